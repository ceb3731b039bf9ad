"""Batch lengths rounded up to a few shapes (train.pad_to_multiple_of): bf16/fp16 runs pad each batch to a multiple of
core.hardware.LENGTH_MULTIPLE tokens, so the CPU's per-shape kernels (and the heap) stop growing after the first
cell of a compare; fp32 runs and `pad_to_multiple_of: 1` pad to the longest text, and the run records its choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoTokenizer, DataCollatorWithPadding

from nlp_transfer.core import hardware
from nlp_transfer.core.hardware import LENGTH_MULTIPLE
from nlp_transfer.data.cache import CACHE_ENV
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.tasks.token_classification import token_collator
from nlp_transfer.train.sampling import token_budget_sub_batches
from nlp_transfer.train.trainer import length_multiple
from tests.conftest import invoke, write_recipe


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: "avx512_bf16")


def test_auto_rounds_only_low_precision_and_an_explicit_multiple_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: "avx512_bf16")
    assert length_multiple(TrainSpec()) == LENGTH_MULTIPLE
    assert length_multiple(TrainSpec(precision="fp32")) is None
    assert length_multiple(TrainSpec(pad_to_multiple_of=1)) is None  # 1: each batch to its longest text
    assert length_multiple(TrainSpec(precision="fp32", pad_to_multiple_of=8)) == 8
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: None)
    assert length_multiple(TrainSpec()) is None  # auto resolves to fp32 on a CPU without bf16
    for wrong in (0, True, "eight", 2.5):
        with pytest.raises(ValidationError, match=r"train\.pad_to_multiple_of must be auto or a whole number") as err:
            TrainSpec(pad_to_multiple_of=wrong)
        assert err.value.error_count() == 1


def _widths_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The padded length of every batch the run's collator builds (training and evaluation)."""
    widths: list[int] = []
    collate = DataCollatorWithPadding.__call__

    def recorded(self: DataCollatorWithPadding, features: Any) -> Any:
        batch = collate(self, features)
        widths.append(int(batch["input_ids"].shape[1]))
        return batch

    monkeypatch.setattr(DataCollatorWithPadding, "__call__", recorded)
    return widths


def test_a_bf16_run_pads_every_batch_to_the_multiple_and_records_it(
    bf16_cpu: None, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    widths = _widths_seen(monkeypatch)
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, data={"eval": str(sentiment_csv)})
    result = invoke("run", recipe, "-o", "train.max_steps=3")
    assert result.exit_code == 0, result.output
    assert widths and all(width % LENGTH_MULTIPLE == 0 for width in widths), widths
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["pad_to_multiple_of"] == LENGTH_MULTIPLE

    widths.clear()  # a probe's feature extraction (outside the Trainer) rounds as its training does
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))  # extracted here, not read from another test's cache
    recipe = write_recipe(tmp_path / "p", tiny_models["bert"], sentiment_csv, method={"name": "probe"})
    result = invoke("run", recipe, "-o", "train.max_steps=2")
    assert result.exit_code == 0, result.output
    assert widths and all(width % LENGTH_MULTIPLE == 0 for width in widths), widths

    widths.clear()  # the same run padded to each batch's longest text: the phrases are shorter than the multiple
    recipe = write_recipe(tmp_path / "b", tiny_models["bert"], sentiment_csv, data={"eval": str(sentiment_csv)})
    result = invoke("run", recipe, "-o", "train.max_steps=3", "-o", "train.pad_to_multiple_of=1")
    assert result.exit_code == 0, result.output
    assert widths and max(widths) < LENGTH_MULTIPLE, widths
    assert json.loads((tmp_path / "b" / "run" / "environment.json").read_text())["pad_to_multiple_of"] is None


def test_token_labels_are_padded_to_the_multiple_with_the_ignored_label(tiny_models: dict[str, Path]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    features = [
        {"input_ids": [101, 7, 8, 102], "labels": [-100, 1, 2, -100]},
        {"input_ids": [101, 7, 8, 9, 10, 102], "labels": [-100, 1, 0, 0, 2, -100]},
    ]
    batch = token_collator(tokenizer, 8)(features)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, 8)
    assert batch["labels"][0].tolist() == [-100, 1, 2, -100] + [-100] * 4
    assert token_collator(tokenizer)(features)["input_ids"].shape == (2, 6)


def test_token_budget_sub_batches_round_their_trimmed_length_up_to_the_multiple() -> None:
    lengths = [9, 3, 4, 9, 2, 3]
    mask = torch.tensor([[1] * n + [0] * (12 - n) for n in lengths])
    batch = {"input_ids": mask * torch.arange(1, 13), "attention_mask": mask}
    assert [p["input_ids"].shape[1] for p in token_budget_sub_batches(batch, budget=18)] == [9, 4]
    # Counted at their rounded lengths (12, 8), the rows still fit the budget: 1 row of 12 tokens, 2 rows of 8.
    rounded = token_budget_sub_batches(batch, budget=18, multiple=8)
    assert [tuple(p["input_ids"].shape) for p in rounded] == [(1, 12), (1, 12), (2, 8), (2, 8)]


def test_contrastive_pair_batches_round_lengths_like_training(tiny_models: dict[str, Path]) -> None:
    import datasets

    from nlp_transfer.methods.contrastive import PairCollator, PairDataset
    from nlp_transfer.methods.pairs import draw_pairs, label_sets

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    split = datasets.Dataset.from_dict(dict(tokenizer(["good", "very bad film", "fine", "dull"])))
    dataset = PairDataset(split, draw_pairs(label_sets([0, 1, 0, 1]), per_example=4, seed=0))
    items = [dataset[i] for i in range(8)]
    assert PairCollator(tokenizer, 8)(items)["input_ids"].shape[1] == 8
    assert PairCollator(tokenizer)(items)["input_ids"].shape[1] == 5  # [CLS] very bad film [SEP]
    spec = TrainSpec(pad_to_multiple_of=1)
    assert spec.length_multiple(None) is None and TrainSpec().length_multiple(None) is None  # fp32: none
