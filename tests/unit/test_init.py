"""`nlp-transfer init` on every labelled data set in ../shared/data: the recipe it writes says what the data is,
validates, and trains (a few steps of a tiny model); ambiguous files are asked about by a flag; nothing is
overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DATA_ROOT, invoke, user_error

# data set -> (init arguments, the task it must propose, fields the recipe must hold)
DATA_SETS: dict[str, tuple[list[str], str, dict[str, Any]]] = {
    "sst2": (["sst2/train.tsv"], "classification", {"data.eval": "sst2/dev.tsv", "data.test": "sst2/test.tsv"}),
    "imdb": (["imdb_5k/movie_review.csv"], "classification", {"task.text": "review", "task.truncation": "windows"}),
    "rt_polarity": (
        ["rt_polarity/rt-polarity.pos", "rt_polarity/rt-polarity.neg"],
        "classification",
        {"data.eval_fraction": 0.1},
    ),
    "amazon": (["amazon_mds/kitchen/train.jsonl", "--label", "rating"], "classification", {"task.label": "rating"}),
    "agnews": (["agnews/dev.tsv", "--columns", "text,label"], "classification", {"data.columns": ["text", "label"]}),
    "trec": (
        ["trec/train_5500.label"],
        "classification",
        {"data.encoding": "latin-1", "task.class_weights": "balanced"},
    ),
    "tweeteval": (
        ["tweeteval/emotion/train_text.txt"],
        "classification",
        {"task.labels_file": "tweeteval/emotion/mapping.txt", "task.class_weights": "none"},  # 4.8x apart
    ),
    "goemotions": (
        ["goemotions/train.tsv", "--columns", "text,labels,id"],
        "multi_label",
        {
            "task.labels_file": "goemotions/emotions.txt",
            "task.thresholds": "per_label",
            "data.test": "goemotions/test.tsv",
        },
    ),
    "emobank": (["emobank/emobank.csv", "--label", "V,A,D"], "regression", {"task.label": ["V", "A", "D"]}),
    "squad_mini": (["squad_mini/train.json"], "qa", {"data.eval": "squad_mini/dev.json"}),
}
SMALL = ["-o", "data.max_eval_samples=16", "-o", "data.max_test_samples=16", "-o", "train.max_steps=2"]
SMALL_TRAIN = {"trec": [], "tweeteval": []}  # many or rare classes: the whole (small) train set, every class seen


def field(recipe: dict[str, Any], dotted: str) -> Any:
    node: Any = recipe
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and "path" in node and not dotted.endswith("train"):
        return node["path"]
    return node


@pytest.mark.parametrize("name", list(DATA_SETS))
def test_init_proposes_a_recipe_that_validates_and_trains(
    name: str, tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments, task, expected = DATA_SETS[name]
    out = tmp_path / "recipe.yaml"
    result = invoke("init", *arguments, "--model", tiny_models["bert"], "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# ") and "# Run: nlp-transfer run" in text
    recipe = yaml.safe_load(text)
    assert recipe["task"]["name"] == task
    for dotted, value in expected.items():
        assert field(recipe, dotted) == value, (dotted, recipe)
    assert invoke("validate", out).exit_code == 0
    small = SMALL_TRAIN.get(name, ["-o", "data.max_train_samples=48"])
    trained = invoke("run", out, *small, *SMALL, "--output-dir", tmp_path / "run")
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "run_status.json").read_text().count("complete") >= 1


def test_init_asks_rather_than_guesses_and_never_overwrites(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    model = tiny_models["bert"]
    user_error(invoke("init", "goemotions/train.tsv", "--model", model), "no header row", "--columns")
    user_error(invoke("init", "emobank/emobank.csv", "--model", model), "several columns could be the label: V, A, D")
    user_error(invoke("init", "amazon_mds/books/train.jsonl", "--model", model), "label, rating", "--label")
    pair = tmp_path / "pairs.csv"
    rows = [f'"the first sentence number {i} here","another sentence that goes on {i}",{i % 2}' for i in range(30)]
    pair.write_text("premise,hypothesis,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    user_error(invoke("init", pair, "--model", model), "several columns hold text", "--text-pair")
    out = tmp_path / "pairs.yaml"
    assert (
        invoke("init", pair, "--model", model, "--text", "premise", "--text-pair", "hypothesis", "--out", out).exit_code
        == 0
    )
    proposed = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert proposed["task"]["text_pair"] == "hypothesis"
    before = out.read_bytes()
    user_error(invoke("init", pair, "--model", model, "--text", "premise", "--out", out), "never overwrites")
    assert out.read_bytes() == before
    user_error(invoke("init", "sst2/train.tsv", "--model", model, "--task", "ranking"), "--task ranking")
    assert DATA_ROOT.is_dir()


def _sentences(count: int) -> list[str]:
    words = [
        "good",
        "bad",
        "movie",
        "great",
        "awful",
        "plot",
        "acting",
        "fun",
        "dull",
        "film",
        "story",
        "boring",
        "lovely",
        "phone",
        "battery",
    ]
    return [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(6 + i % 5)) + f" {i}" for i in range(count)]


def test_init_reads_the_files_people_have_with_its_own_options(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """A header-less UCI-style .txt (sentence<TAB>0/1) with and without --columns; a ';'-separated csv is advised
    with init's own --delimiter, then read with it (and --encoding); a held-out test split is proposed with its size."""
    model = tiny_models["bert"]
    uci = tmp_path / "amazon_cells_labelled.txt"
    uci.write_text("".join(f"{s}\t{i % 2}\n" for i, s in enumerate(_sentences(40))), encoding="utf-8")
    for extra, text_column in (([], "text"), (["--columns", "sentence,score"], "sentence")):
        out = tmp_path / f"uci{len(extra)}.yaml"
        result = invoke("init", uci, "--model", model, "--out", out, *extra)
        assert result.exit_code == 0, result.output
        recipe = yaml.safe_load(out.read_text(encoding="utf-8"))
        assert recipe["task"]["name"] == "classification" and recipe["task"]["text"] == text_column
        assert recipe["data"]["train"]["format"] == "tsv"
        assert "no test file: 8 rows (20%) are held out as the test split" in result.output
        assert recipe["data"]["test_fraction"] == 0.2
        trained = invoke("run", out, *SMALL, "--output-dir", tmp_path / f"run{len(extra)}")
        assert trained.exit_code == 0, trained.output
        metrics = (tmp_path / f"run{len(extra)}" / "metrics.json").read_text(encoding="utf-8")
        assert '"test_' in metrics  # the held-out test split is scored
    semi = tmp_path / "reviews.csv"
    semi.write_text(
        "review;stars\n" + "".join(f"{s};{i % 2}\n" for i, s in enumerate(_sentences(40))), encoding="latin-1"
    )
    line = user_error(invoke("init", semi, "--model", model), "--delimiter", "';'")
    assert "data.delimiter" not in line and "data.encoding" not in line
    out = tmp_path / "semi.yaml"
    result = invoke("init", semi, "--model", model, "--delimiter", ";", "--encoding", "latin-1", "--out", out)
    assert result.exit_code == 0, result.output
    recipe = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert (recipe["data"]["delimiter"], recipe["data"]["encoding"], recipe["task"]["text"]) == (
        ";",
        "latin-1",
        "review",
    )
    assert invoke("validate", out).exit_code == 0


def test_init_refuses_what_it_cannot_honestly_propose(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    model = tiny_models["bert"]
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "text,label\n" + "".join(f"{s},{['pos', 'neg'][i % 2]}\n" for i, s in enumerate(_sentences(30))),
        encoding="utf-8",
    )
    bare = tmp_path / "bare.tsv"
    bare.write_text("".join(f"{s}\t{i % 2}\n" for i, s in enumerate(_sentences(30))), encoding="utf-8")
    one = tmp_path / "one.csv"
    one.write_text("text,label\nhello there my friend,pos\n", encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    cases = {
        (labelled, "--task", "qa"): ("--task qa", "question, context and answers", "text, label"),
        (labelled, "--task", "regression"): ("--task regression", "holds text ('pos')", "not numbers"),
        (bare, "--columns", "a,b,c"): ("--columns names 3 columns", "have 2 fields", "give 2 names"),
        (one,): ("1 data row", "at least 10"),
        (empty,): ("is empty",),
    }
    for args, fragments in cases.items():
        out = tmp_path / "never.yaml"
        line = user_error(invoke("init", *args, "--model", model, "--out", out), *fragments)
        assert "header row" not in line and not out.exists()


def test_a_test_split_is_named_once(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from tests.conftest import write_recipe

    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(_sentences(20))), encoding="utf-8")
    both = write_recipe(tmp_path, tiny_models["bert"], data, data={"test": str(data), "test_fraction": 0.2})
    user_error(invoke("validate", both), "data.test and data.test_fraction", "set only one")
