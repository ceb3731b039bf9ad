"""Long texts (truncation head / tail / head_tail / windows), class weights, label names files and label_lines, and
metrics by name through `evaluate` (a local metric script, offline)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from nlp_transfer.tasks.classification import class_weights, weighted_cross_entropy
from nlp_transfer.tasks.multi_label import positive_weights
from nlp_transfer.tasks.multi_label_losses import binary_cross_entropy
from nlp_transfer.tasks.text_inputs import TextInputs, encode_texts, pool_windows, special_tokens
from tests.conftest import invoke, user_error, write_recipe
from tests.unit.labels_data import long_review_rows, write_jsonl

METRIC_SCRIPT = """
import datasets
import evaluate


class Agreement(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="share of predictions equal to the references",
            citation="",
            inputs_description="predictions and references: class ids",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"agreement": sum(p == r for p, r in zip(predictions, references)) / len(references)}
"""


def ok(*args: object) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def tokenizer(tiny_models: dict[str, Path]) -> Any:
    return AutoTokenizer.from_pretrained(tiny_models["bert"])


@pytest.mark.parametrize("architecture", ["bert", "roberta", "gpt2"])
def test_truncation_keeps_the_head_the_tail_or_both_and_windows_cover_everything(
    architecture: str, tiny_models: dict[str, Path]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[architecture])
    text = " ".join(f"w{i}" for i in range(200))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix, suffix = special_tokens(tokenizer)
    room = 32 - len(prefix) - len(suffix)

    def encoded(truncation: str, **extra: Any) -> Any:
        return encode_texts(tokenizer, [text, "short text"], None, TextInputs(32, truncation, **extra))

    head, tail = encoded("head"), encoded("tail")
    assert head.rows["input_ids"][0] == prefix + ids[:room] + suffix
    assert tail.rows["input_ids"][0] == prefix + ids[-room:] + suffix
    both = encoded("head_tail", head_tokens=5).rows["input_ids"][0]
    assert both == prefix + ids[:5] + ids[-(room - 5) :] + suffix
    assert encoded("head_tail").rows["input_ids"][0][len(prefix) : len(prefix) + room // 4] == ids[: room // 4]
    for found in (head, tail):  # a short text is the same whatever the truncation
        assert found.rows["input_ids"][1] == tokenizer("short text")["input_ids"]
        assert found.documents == [0, 1]

    windows = encoded("windows", stride=8)
    assert windows.documents[-1] == 1 and windows.documents.count(1) == 1  # the short text: one window
    inner = [
        row[len(prefix) : len(row) - len(suffix)]
        for row, d in zip(windows.rows["input_ids"], windows.documents, strict=True)
        if d == 0
    ]
    assert all(len(row) <= 32 for row in windows.rows["input_ids"])
    assert inner[0][:room] == ids[:room] and inner[-1][-5:] == ids[-5:]  # from the first token to the last
    for before, after in itertools.pairwise(inner):
        assert before[-8:] == after[:8]  # consecutive windows share `stride` tokens


def test_pool_windows_averages_or_takes_the_max_per_text_in_order() -> None:
    outputs = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0], [0.0, 1.0], [2.0, 3.0]])
    labels = np.array([1, 1, 0, 1, 1])
    documents = [4, 4, 7, 9, 9]
    pooled, kept = pool_windows(outputs, labels, documents, "mean")
    assert pooled.tolist() == [[2.0, 1.0], [5.0, 5.0], [1.0, 2.0]] and kept is not None and kept.tolist() == [1, 0, 1]
    assert pool_windows(outputs, None, documents, "max")[0].tolist() == [[3.0, 2.0], [5.0, 5.0], [2.0, 3.0]]


def test_class_weights_balanced_and_explicit_and_their_losses() -> None:
    notes: list[str] = []
    weights = class_weights("balanced", [90, 10], ["common", "rare"], notes)
    assert weights == pytest.approx([100 / (2 * 90), 100 / (2 * 10)])
    assert class_weights("none", [90, 10], ["a", "b"], notes) is None
    assert class_weights([1.0, 3.0], [90, 10], ["a", "b"], notes) == [1.0, 3.0]
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 1, 1])
    loss = weighted_cross_entropy([1.0, 3.0])
    assert loss is not None
    each = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    # a mean over the 3 examples (so micro-batches add up by their share of examples; test_engine_loss.py)
    assert loss(logits, labels).item() == pytest.approx(((each * torch.tensor([1.0, 3.0, 3.0])).sum() / 3).item())

    positives = positive_weights("balanced", np.array([10, 40, 0]), 50, ["a", "b", "c"], notes)
    assert positives == pytest.approx([4.0, 0.25, 1.0])  # negatives / positives; a label never seen keeps 1
    assert any("c never occur" in note for note in notes)
    multi = torch.tensor([[0.5, -1.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(*multi, pos_weight=torch.tensor([4.0, 0.25, 1.0]))
    assert binary_cross_entropy(positives)(*multi).item() == pytest.approx(expected.item())


@pytest.fixture(scope="module")
def reviews(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("reviews")
    metric = folder / "agreement.py"
    metric.write_text(METRIC_SCRIPT, encoding="utf-8")
    return (
        write_jsonl(folder / "train.jsonl", long_review_rows(64, 0)),
        write_jsonl(folder / "eval.jsonl", long_review_rows(16, 1)),
        metric,
    )


def test_windows_read_the_whole_review_train_evaluate_and_predict_per_review(
    tmp_path: Path, tiny_models: dict[str, Path], reviews: Any
) -> None:
    """Each review is several windows in training; evaluation and predict pool them back to one row per review.
    The same run has class weights and an extra metric from a local evaluate script (offline)."""
    train, evaluation, metric = reviews
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        train,
        task={"max_length": 32, "truncation": "windows", "stride": 8, "class_weights": [1.0, 2.0]},
        data={"eval": str(evaluation)},
        train={"epochs": 2, "extra_metrics": [str(metric)]},
    )
    ok("run", recipe)
    run = tmp_path / "run"
    found = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
    assert found["eval_support_negative"] + found["eval_support_positive"] == 16  # reviews, not windows
    assert found["eval_agreement"] == pytest.approx(found["eval_accuracy"])  # the extra metric, on the same rows
    notes = (run / "environment.json").read_text(encoding="utf-8")
    assert "windows of 32 tokens (stride 8): train 64 texts ->" in notes
    assert json.loads((run / "task.json").read_text())["class_weights"] == [1.0, 2.0]
    recorded = (run / "recipe.resolved.yaml").read_text(encoding="utf-8")
    assert "metric_for_best: macro_f1" in recorded  # class weights on: the best checkpoint by macro-F1

    evaluated = json.loads(ok("evaluate", run, "--data", evaluation).stdout)["metrics"]
    assert evaluated["accuracy"] == found["eval_accuracy"] and evaluated["agreement"] == found["eval_agreement"]
    long_text = long_review_rows(1, 5)[0]["text"]
    rows = [json.loads(line) for line in ok("predict", run, long_text, "short").stdout.splitlines()]
    assert len(rows) == 2 and sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert "overlapping windows" in (run / "README.md").read_text(encoding="utf-8")


def test_a_probe_on_windows_pools_cached_features_per_review(
    tmp_path: Path, tiny_models: dict[str, Path], reviews: Any
) -> None:
    train, evaluation, _ = reviews
    recipe = write_recipe(
        tmp_path,
        tiny_models["distilbert"],
        train,
        task={"max_length": 32, "truncation": "windows", "stride": 8},
        method={"name": "probe"},
        data={"eval": str(evaluation)},
    )
    ok("run", recipe)
    found = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))["eval"]
    assert found["eval_support_negative"] + found["eval_support_positive"] == 16
    evaluated = json.loads(ok("evaluate", tmp_path / "run", "--data", evaluation).stdout)["metrics"]
    assert evaluated["accuracy"] == found["eval_accuracy"]


def test_label_names_from_a_file_and_labels_from_a_parallel_file(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """TweetEval's layout: texts in one file, ids in another, names in mapping.txt."""
    texts = [f"{word} day {i}" for i in range(40) for word in (("lovely",) if i % 2 else ("horrid",))]
    (tmp_path / "train_text.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "train_labels.txt").write_text("\n".join(str(i % 2) for i in range(40)) + "\n", encoding="utf-8")
    (tmp_path / "mapping.txt").write_text("0\tsad\n1\thappy\n", encoding="utf-8")
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        "replaced below",
        task={"labels_file": str(tmp_path / "mapping.txt")},
        data={
            "train": {"path": str(tmp_path / "train_text.txt"), "label_lines": str(tmp_path / "train_labels.txt")},
            "eval_fraction": 0.25,
        },
    )
    ok("run", recipe)
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert config["id2label"] == {"0": "sad", "1": "happy"}
    hashed = json.loads((tmp_path / "run" / "environment.json").read_text())["data_file_sha256"]
    assert {Path(p).name for p in hashed} == {"train_text.txt", "train_labels.txt", "mapping.txt"}
    texts, labels = tmp_path / "train_text.txt", tmp_path / "train_labels.txt"
    evaluated = json.loads(ok("evaluate", tmp_path / "run", "--data", texts, "--label-lines", labels).stdout)
    assert evaluated["rows"] == 40 and {"support_sad", "support_happy"} <= set(evaluated["metrics"])

    (tmp_path / "train_labels.txt").write_text("0\n1\n", encoding="utf-8")
    user_error(invoke("run", recipe, "--overwrite"), "has 2 lines but", "train_text.txt has 40 rows")


def test_an_evaluate_metric_that_is_not_cached_offline_is_one_line(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], "x.csv", train={"extra_metrics": ["matthews_correlation"]})
    from tests.conftest import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "s.csv")
    result = invoke("run", recipe, "-o", f"data.train={data}")
    user_error(result, "train.extra_metrics.0", "HF_HUB_OFFLINE", "evaluate.load('matthews_correlation')")
    assert not (tmp_path / "run").exists()
    user_error(invoke("validate", recipe, "-o", "task={name: qa}"), "extra_metrics")
