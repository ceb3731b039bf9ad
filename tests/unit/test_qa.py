"""Extractive QA: windows over long contexts and back (every tokenizer), batch-by-batch metrics, every method on tiny
models, predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors import safe_open
from transformers import AutoTokenizer
from typer.testing import CliRunner

from nlp_transfer.cli import app
from nlp_transfer.data.readers import read_squad_json
from nlp_transfer.recipe import QuestionAnsweringTask
from nlp_transfer.tasks.metrics import squad_metrics
from nlp_transfer.tasks.qa import SpanMetrics
from nlp_transfer.tasks.spans import NULL_INDEX, AnswerMerger, Span, answer_tokens, best_spans, windows
from nlp_transfer.use.predict import open_predictor
from tests.conftest import DATA_ROOT

ARCHITECTURES = ("bert", "distilbert", "roberta", "gpt2")
SQUAD_DEV = DATA_ROOT / "squad_mini" / "dev.json"


def squad_rows(limit: int | None = None, longest: bool = False) -> list[dict]:
    dataset = read_squad_json(SQUAD_DEV.read_text(encoding="utf-8"), SQUAD_DEV, "data.eval")
    rows = list(dataset)
    if longest:
        rows.sort(key=lambda r: -len(r["context"]))
    return rows[:limit] if limit else rows


def one_hot_logits(length: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits that point at exactly one span (the labels a perfect model would give)."""
    start_logits, end_logits = np.full(length, -10.0), np.full(length, -10.0)
    start_logits[start] = end_logits[end] = 10.0
    return start_logits, end_logits


# ---- pre- and post-processing round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_windows_and_back_recover_every_answer_of_long_contexts(
    tiny_models: dict[str, Path], architecture: str
) -> None:
    """Contexts several windows long: every answer is labelled in some window, the labelled tokens decode to the
    answer, and one-hot logits on those labels post-process back to the exact answer text and offsets."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[architecture])
    rows = squad_rows(40, longest=True)  # contexts of 1,100-2,000 characters: 250-450 tokens
    found = windows(
        tokenizer,
        [r["question"] for r in rows],
        [r["context"] for r in rows],
        max_length=96,
        stride=24,
    )
    assert len(found) >= 3 * len(rows)  # really several windows per question
    merger = AnswerMerger(n_best=5, allow_null=False, null_threshold=0.0)
    labelled = set()
    for window in found:
        row = rows[window.example]
        text, start_char = row["answers"]["text"][0], row["answers"]["answer_start"][0]
        start, end = answer_tokens(window.offsets, start_char, start_char + len(text))
        spans: list[Span] = []
        if (start, end) != (NULL_INDEX, NULL_INDEX):
            labelled.add(window.example)
            decoded = row["context"][window.offsets[start][0] : window.offsets[end][1]]
            assert text in decoded and len(decoded.strip()) <= len(text) + 12, (decoded, text)
            start_logits, end_logits = one_hot_logits(len(window.offsets) + 7, start, end)  # + batch padding
            spans = best_spans(start_logits, end_logits, window.offsets, n_best=5, max_answer_length=30)
            assert spans[0].start <= start_char and spans[0].end >= start_char + len(text)
        merger.add(window.example, row["context"], spans, 0.0)
    assert labelled == set(range(len(rows)))  # the stride leaves no answer cut by every window
    answers = merger.answers()
    predictions = [answers[i].text or "" for i in range(len(rows))]
    golds = [r["answers"]["text"] for r in rows]
    # Answers that end inside a word (e.g. "1990" in "1990s") decode to the whole token: count how many do.
    whole_tokens = sum(p == g[0] for p, g in zip(predictions, golds, strict=True))
    assert whole_tokens >= 0.9 * len(rows)
    assert squad_metrics(predictions, golds)["f1"] >= 95.0
    for i, answer in answers.items():
        assert answer.start is not None and answer.end is not None
        assert rows[i]["context"][answer.start : answer.end] == answer.text


def test_best_spans_respects_order_max_length_and_context() -> None:
    offsets = [(-1, -1), (-1, -1), (0, 3), (4, 9), (10, 12), (13, 20), (-1, -1)]
    start_logits = np.array([9.0, 8.0, 1.0, 5.0, 0.0, 4.0, 9.0])
    end_logits = np.array([9.0, 8.0, 6.0, 0.0, 2.0, 0.5, 9.0])
    spans = best_spans(start_logits, end_logits, offsets, n_best=10, max_answer_length=2)
    # Question tokens (0, 1) and the trailing special token score highest but are not in the context; end before
    # start and spans longer than 2 tokens are never candidates.
    assert spans[0] == Span(7.0, 4, 12)  # start token 3 (5.0) + end token 4 (2.0)
    assert all(s.start < s.end for s in spans)
    assert Span(11.0, 4, 12) not in spans and all(s.score <= 7.0 for s in spans)
    # n_best starts x n_best ends are scored (3 x 3 here: 6 ordered pairs), the best n_best kept.
    top = best_spans(start_logits, end_logits, offsets, n_best=3, max_answer_length=30)
    assert [s.score for s in top] == [7.0, 7.0, 5.5]


def test_null_answer_wins_only_by_more_than_the_threshold() -> None:
    spans = [Span(3.0, 0, 5)]
    for threshold, expected in ((0.0, None), (1.5, None), (2.5, "Paris")):
        merger = AnswerMerger(n_best=5, allow_null=True, null_threshold=threshold)
        merger.add(0, "Paris is big", spans, null=5.0)  # null beats the span by 2.0
        merger.add(0, "Paris is big", [], null=7.0)  # a second window: the smallest null score counts
        answer = merger.answers()[0]
        assert answer.text == expected
        assert 0.0 < answer.score < 1.0
    merger = AnswerMerger(n_best=5, allow_null=False, null_threshold=0.0)
    merger.add(0, "Paris is big", spans, null=50.0)
    assert merger.answers()[0].text == "Paris"  # v1.1 data: never "no answer"


def test_metrics_batch_by_batch_equal_metrics_of_the_whole_set(tiny_models: dict[str, Path]) -> None:
    """SpanMetrics fed in batches (as TrainingArguments.batch_eval_metrics does) gives the numbers it gives on
    all windows at once, and the numbers squad_metrics gives on the merged answers."""
    import datasets
    from transformers import EvalPrediction

    from nlp_transfer.data.loading import LoadedData
    from nlp_transfer.tasks.qa import QuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    rows = squad_rows(30, longest=True)
    split = datasets.Dataset.from_list(rows)
    config = QuestionAnsweringTask(name="qa", max_length=96, stride=24)
    data = LoadedData(splits=datasets.DatasetDict(train=split, eval=split), sources={"train": ["x"], "eval": ["x"]})
    prepared = QuestionAnswering(config).prepare(data, tokenizer, pad_to_max_length=True)
    features = prepared.splits["eval"]
    rng = np.random.default_rng(0)
    start_logits = rng.normal(size=(len(features), 96)).astype(np.float32)
    end_logits = rng.normal(size=(len(features), 96)).astype(np.float32)
    labels = (np.zeros(len(features)), np.zeros(len(features)))
    assert prepared.batch_metrics_for is not None
    whole = prepared.batch_metrics_for(features)(EvalPrediction((start_logits, end_logits), labels), True)
    batched = SpanMetrics(features, config, allow_null=False)
    for begin in range(0, len(features), 7):
        chunk = slice(begin, begin + 7)
        result = batched(EvalPrediction((start_logits[chunk], end_logits[chunk]), labels), begin + 7 >= len(features))
    assert result == whole and whole["total"] == len(rows)
    # The metrics score the answers: logits that point at every window's labelled tokens find (almost) every
    # answer, while the random ones above find few.
    pointed = [np.full((len(features), 96), -10.0, dtype=np.float32) for _ in range(2)]
    for logits, column in zip(pointed, ("start_positions", "end_positions"), strict=True):
        logits[np.arange(len(features)), np.asarray(features[column])] = 10.0
    right = prepared.batch_metrics_for(features)(EvalPrediction(tuple(pointed), labels), True)
    assert right["f1"] >= 95.0 and right["exact_match"] >= 90.0, right
    assert whole["f1"] < right["f1"] - 50.0, (whole, right)


# ---- every method, end to end on tiny models ------------------------------------------------------------------


def write_qa_recipe(folder: Path, model: Path, method: dict, **task: object) -> Path:
    recipe = {
        "model": {"name": str(model)},
        "task": {"name": "qa", "max_length": 96, "stride": 24, **task},
        "method": method,
        "data": {
            "train": "squad_mini/train.json",
            "eval": "squad_mini/dev.json",
            "max_train_samples": 24,
            "max_eval_samples": 12,
        },
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 2, "seed": 0},
        "output": {"dir": str(folder / "run")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def run_cli(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


METHODS = {
    "full": {"name": "full"},
    "probe": {"name": "probe"},
    "unfreeze_last": {"name": "unfreeze_last", "layers": 1},
    "lora": {"name": "lora", "r": 4},
    "scratch": {"name": "scratch"},
}


@pytest.mark.parametrize(
    ("architecture", "method"),
    [(a, "full") for a in ARCHITECTURES] + [("bert", m) for m in METHODS if m != "full"],
)
def test_every_method_trains_evaluates_saves_and_predicts(
    tmp_path: Path, tiny_models: dict[str, Path], architecture: str, method: str
) -> None:
    recipe = write_qa_recipe(tmp_path, tiny_models[architecture], METHODS[method])
    run_cli("run", recipe)
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train"]["method"] == method
    assert {"eval_exact_match", "eval_f1", "eval_loss"} <= metrics["eval"].keys()
    assert metrics["eval"]["eval_total"] == 12  # every eval question scored once, windows merged
    trainable, total = metrics["train"]["trainable_parameters"], metrics["train"]["total_parameters"]
    if method == "probe":
        assert trainable == 96 * 0 + 32 * 2 + 2  # only qa_outputs: Linear(hidden 32 -> start/end)
    elif method in ("lora", "unfreeze_last"):
        assert trainable < total
    else:
        assert trainable == total
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: question-answering" in card and "exact_match" in card and "## Labels" not in card

    context = "The Eiffel Tower was finished in 1889 in Paris. It is 330 metres tall."
    output = run_cli("predict", run_dir, "--question", "When was the tower finished?", "--context", context)
    (answer,) = [json.loads(line) for line in output.splitlines()]
    assert answer["question"] == "When was the tower finished?"
    assert context[answer["start"] : answer["end"]] == answer["answer"] and answer["answer"]
    assert 0.0 < answer["score"] <= 1.0


def test_lora_saves_the_trained_qa_outputs_and_reloads_identically(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    recipe = write_qa_recipe(tmp_path, tiny_models["bert"], METHODS["lora"])
    run_cli("run", recipe)
    run_dir = tmp_path / "run"
    adapter = json.loads((run_dir / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["task_type"] == "QUESTION_ANS" and "qa_outputs" in adapter["modules_to_save"]
    with safe_open(str(run_dir / "adapter_model.safetensors"), framework="pt") as weights:
        names = list(weights.keys())
    assert any("qa_outputs" in n for n in names) and any("lora_A" in n for n in names)

    pairs = [
        {"id": "a", "question": "Who wrote it?", "context": "It was written by Mary Shelley in 1818."},
        {"id": "b", "question": "Where?", "context": " ".join(["Long context about rivers and hills."] * 30)},
    ]
    file = tmp_path / "pairs.jsonl"
    file.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    run_cli("predict", run_dir, "--file", file, "--out", out)
    first = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [a["id"] for a in first] == ["a", "b"]
    again = list(open_predictor(run_dir).predict(pairs))  # a fresh load of base model + adapter
    assert [(a["answer"], a["start"]) for a in again] == [(a["answer"], a["start"]) for a in first]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(again, first, strict=True))


def test_predict_on_a_qa_run_rejects_classification_inputs(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    recipe = write_qa_recipe(tmp_path, tiny_models["bert"], METHODS["full"], max_length=64, stride=16)
    run_cli("run", recipe, "-o", "train.max_steps=1")
    run_dir = tmp_path / "run"
    cases = {
        ("predict", run_dir, "some text"): "this run answers questions",
        ("predict", run_dir, "--question", "Who?"): "give both --question and --context",
        ("predict", run_dir, "--question", " ", "--context", "x"): "must not be empty",
        ("predict", run_dir, "--question", "why " * 80, "--context", "x"): "leaves no room for the context",
    }
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"question": "Who?", "context": "Ann."}\n{"question": "Who?", "context": ""}\n', encoding="utf-8")
    cases[("predict", run_dir, "--file", pairs)] = f"--file {pairs} line 2: the question and the context must not"
    cases[("predict", run_dir, "--file", tmp_path / "none.jsonl")] = "not found"
    for args, message in cases.items():
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_compare_grids_qa_methods_on_f1(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    recipe = write_qa_recipe(tmp_path, tiny_models["bert"], METHODS["full"], max_length=64, stride=16)
    out = tmp_path / "cmp"
    command = ["compare", recipe, "--methods", "scratch,lora", "--train-sizes", "12", "--seeds", "1"]
    run_cli(*command, "--output-dir", out)
    record = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert record["info"]["metric"] == "f1"  # the QA task's main metric picks the best checkpoint and the table
    assert {c["method"] for c in record["cells"]} == {"scratch", "lora"}
    for cell in record["cells"]:
        assert cell["value"] == cell["eval"]["eval_f1"] and 0.0 <= cell["value"] <= 100.0
        assert cell["train_size"] == 12
    assert "eval f1" in (out / "compare.md").read_text(encoding="utf-8")
