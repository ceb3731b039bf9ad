"""Reports lead with the answer (issue 31): report.html, the terminal summary and the card show the headline metrics
first, then the verdicts (kept checkpoint, baseline, over-fitting), then the figures, then the full per-label table;
every task states a trivial baseline; `report` reads the run's status and task. The reports of a fixture run folder
(trained once for the module) are rebuilt here without training."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.conftest import invoke, user_error, write_recipe

LABELS = [f"feeling{index:02d}" for index in range(30)]  # GoEmotions-like: many labels
ABSENT = LABELS[-1]  # never in the eval file: its eval support is 0


def _rows(count: int, seed: int, labels: list[str]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        chosen = sorted({labels[i % len(labels)], *rng.sample(labels, rng.choice([0, 0, 1]))})  # every label seen
        rows.append({"text": " ".join([*chosen, "and the day went on", str(i)]), "labels": chosen})
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def ok(*args: object) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def many_labels(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> tuple[Path, str]:
    """A tiny multi-label run with 30 labels, one of them absent from the eval split: (its folder, the summary)."""
    folder = tmp_path_factory.mktemp("many-labels")
    train = _write(folder / "train.jsonl", _rows(120, 0, LABELS))
    evaluation = _write(folder / "eval.jsonl", _rows(40, 1, LABELS[:-1]))
    recipe = write_recipe(
        folder,
        tiny_models["bert"],
        train,
        task={"name": "multi_label", "text": "text", "label": "labels", "max_length": 24},
        data={"eval": str(evaluation)},
        train={"epochs": 2, "batch_size": 16, "learning_rate": 2e-3, "logging_steps": 2, "precision": "fp32"},
    )
    return folder / "run", ok("run", recipe)


def _positions(text: str, *markers: str) -> list[int]:
    found = [text.find(marker) for marker in markers]
    assert all(p >= 0 for p in found), [m for m, p in zip(markers, found, strict=True) if p < 0]
    return found


def test_a_many_label_report_leads_with_macro_f1_the_verdicts_and_a_figure(many_labels: tuple[Path, str]) -> None:
    run, _ = many_labels
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Run complete;" in page and "not complete" not in page  # written just before the run is marked complete
    results = page.split("<h2>Results</h2>")[1].split("</table>")[0]
    assert "<td>macro_f1</td>" in results and results.count("<tr>") <= 12  # the headline, not 120 rows
    assert "f1_feeling" not in results and "support" not in results
    positions = _positions(page, "<td>macro_f1</td>", "kept the", "baseline", "<img ", "<details>", "feeling00")
    assert positions == sorted(positions), positions
    # The per-label table is all there, collapsed, and a label the eval split never has shows a support of 0.
    table = page.split("<details>")[1].split("</details>")[0]
    assert all(f"<td>{label}</td>" in table for label in LABELS)
    assert re.search(rf"<td>{ABSENT}</td>(<td>[^<]*</td>){{3}}<td>0</td></tr>", table), table[:500]
    assert "0.0000</td></tr>" not in table  # no support printed as a score


def test_the_summary_and_the_card_lead_with_the_answer_too(many_labels: tuple[Path, str]) -> None:
    run, summary = many_labels
    positions = _positions(summary, "macro_f1", "note: kept the", "Per class (")
    assert positions == sorted(positions), summary
    card = (run / "README.md").read_text(encoding="utf-8")
    positions = _positions(card, "## Metrics", "kept the", "](curves.png)", "## Base model", "## How to use")
    assert positions == sorted(positions)


def test_a_multi_label_run_states_its_constant_baseline(many_labels: tuple[Path, str]) -> None:
    run, summary = many_labels
    baseline = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["diagnostics"]["baseline"]
    assert "no label for any text" in baseline["name"] and baseline["macro_f1"] == 0.0
    assert "baseline: no label for any text" in summary or "no better than no label" in summary


def test_the_fixture_run_renders_every_report_without_training(
    many_labels: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report.html, the curves and the card come back from the run folder's files alone."""
    import nlp_transfer.train.phases as phases

    monkeypatch.setattr(phases, "build_trainer", None)  # nothing below may train
    run = tmp_path / "run"
    shutil.copytree(many_labels[0], run)
    for name in ("report.html", "curves.png", "README.md"):
        (run / name).unlink()
    ok("report", run)
    assert (run / "curves.png").is_file() and "<td>macro_f1</td>" in (run / "report.html").read_text("utf-8")
    from nlp_transfer.report.card import model_card

    assert "## Metrics" in model_card(run) and "label_f1.png" in model_card(run)


def test_report_with_an_output_dir_writes_there_and_leaves_the_run_alone(
    many_labels: tuple[Path, str], tmp_path: Path
) -> None:
    run = many_labels[0]
    before = (run / "report.html").read_bytes(), (run / "curves.png").read_bytes()
    ok("report", run, "--output-dir", tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "report.html").is_file() and (tmp_path / "elsewhere" / "curves.png").is_file()
    assert ((run / "report.html").read_bytes(), (run / "curves.png").read_bytes()) == before


def test_report_refuses_unfinished_runs_runs_of_other_tasks_and_names_a_missing_log(
    many_labels: tuple[Path, str], tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    run = tmp_path / "copy"
    shutil.copytree(many_labels[0], run)
    classification = write_recipe(tmp_path / "c", tiny_models["bert"], sentiment_csv, train={"max_steps": 2})
    ok("run", classification)
    user_error(invoke("report", run, tmp_path / "c" / "run"), "different tasks", "multi_label", "classification")
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    (run / "run_status.json").write_text(json.dumps({**status, "state": "failed"}), encoding="utf-8")
    user_error(invoke("report", run), "failed", "not complete")
    (run / "trainer_state.json").unlink()
    user_error(invoke("report", run), "no trainer_state.json")


def test_the_baseline_is_the_best_constant_answer_on_the_split_scored() -> None:
    """compare --per-class on a balanced few-shot set: the training split is a tie, the eval split is 55% 'b'.
    The baseline is always 'b' (0.55), said as the best constant answer on the eval split, not 'a' (0.45)."""
    from nlp_transfer.tasks.classification_report import best_constant

    baseline = best_constant([0] * 9 + [1] * 11, ["a", "b"])
    assert baseline["accuracy"] == pytest.approx(0.55)
    assert baseline["name"] == "always 'b' (the best constant answer on the eval split)"


def test_windowed_labels_count_once_per_text() -> None:
    """truncation: windows gives a long text several rows; the baseline counts each text once."""
    import datasets

    from nlp_transfer.tasks.classification import Classification

    # Text 0 is long (5 windows of 'a'); texts 1 and 2 are 'b': per window 'a' wins, per text 'b' does.
    split = datasets.Dataset.from_dict({"labels": [0, 0, 0, 0, 0, 1, 1], "document": [0, 0, 0, 0, 0, 1, 2]})

    baseline = Classification.results.baseline(SimpleNamespace(splits={"eval": split}, label_names=["a", "b"]))
    assert baseline["accuracy"] == pytest.approx(2 / 3) and "'b'" in baseline["name"]


def test_a_regression_run_states_the_training_mean_baseline(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from tests.unit.labels_data import write_emotions

    train, evaluation = write_emotions(tmp_path / "data")
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        train,
        task={"name": "regression", "text": "text", "label": "score", "max_length": 24},
        data={"eval": str(evaluation)},
        train={"max_steps": 2, "precision": "fp32"},
    )
    ok("run", recipe)
    diagnostics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))["diagnostics"]
    baseline = diagnostics["baseline"]
    assert baseline["name"] == "always the training mean"
    truth = [json.loads(line)["score"] for line in evaluation.read_text(encoding="utf-8").splitlines()]
    mean = np.mean([json.loads(line)["score"] for line in train.read_text(encoding="utf-8").splitlines()])
    assert baseline["mae"] == pytest.approx(np.mean(np.abs(np.asarray(truth) - mean)), rel=1e-4)


def test_the_curves_share_their_step_axis_and_draw_the_baseline() -> None:
    from nlp_transfer.report.figures import curves_figure

    history = [{"step": s, "loss": 1.0 / s} for s in range(1, 21)]
    history += [{"step": s, "eval_loss": 0.5, "eval_accuracy": 0.6 + s / 100} for s in (5, 10)]
    losses, scores = curves_figure({"run": history}, "accuracy", baseline=0.55).axes[:2]
    assert losses.get_xlim() == scores.get_xlim()
    assert losses.get_xlabel() == scores.get_xlabel() == "optimizer step"
    flat = [line for line in scores.get_lines() if len(set(line.get_ydata())) == 1]
    assert any(float(line.get_ydata()[0]) == 0.55 for line in flat)
    assert any("baseline" in text.get_text() for text in scores.get_legend().get_texts())


def test_errors_show_the_users_text_and_its_row_in_their_file_per_text_with_windows(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """Long reviews read in windows: errors.jsonl has one row per review (never window i beside review i's label),
    with the review as the user wrote it (case and apostrophes kept) and its row in the user's file, counted
    across a row the run skipped (an empty text)."""
    import csv

    from tests.unit.labels_data import long_review_rows, write_jsonl

    train = write_jsonl(tmp_path / "train.jsonl", long_review_rows(32, 2))
    reviews = [
        {**row, "text": f"It's Review {i}: " + str(row["text"])} for i, row in enumerate(long_review_rows(16, 3))
    ]
    reviews.insert(2, {"text": "", "label": "positive"})  # skipped: row 3 of the file is never scored
    evaluation = tmp_path / "eval.csv"
    with evaluation.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["text", "label"])
        writer.writeheader()
        writer.writerows(reviews)
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        train,
        task={"max_length": 32, "truncation": "windows", "stride": 8},
        data={"eval": str(evaluation)},
        train={"max_steps": 1, "learning_rate": 1e-7},
    )
    ok("run", recipe)
    errors = [json.loads(line) for line in (tmp_path / "run" / "errors.jsonl").read_text("utf-8").splitlines()]
    assert errors, "an untrained model gets some reviews wrong"
    for error in errors:
        assert error["file"] == str(evaluation) and error["row"] != 3
        written = reviews[error["row"] - 1]
        assert error["text"] == written["text"] and error["label"] == written["label"] != error["predicted"]


@pytest.mark.subprocess
def test_export_to_onnx_and_int8_prints_one_line(many_labels: tuple[Path, str], tmp_path: Path) -> None:
    """No "torchvision is not installed" lines from torch.onnx, no quantization advice from onnxruntime."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "nlp_transfer", "export", str(many_labels[0]), "--quantize", "int8"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("exported "), "\n".join(lines)


def test_every_task_has_a_view_that_renders_without_training(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """Every task in TASKS draws its view from what its last evaluation saw; here that is made up (no model runs):
    a new task cannot leave the report without figures, and a view that breaks fails here, not after a run."""
    import datasets
    from transformers import AutoTokenizer

    from nlp_transfer.report import figures
    from nlp_transfer.tasks import TASKS
    from nlp_transfer.tasks.results import ViewInputs

    rng = np.random.default_rng(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    texts = ["a fine day", "a dull day", "a good film", "a bad film"]
    tokenized = datasets.Dataset.from_dict({"input_ids": [tokenizer(t)["input_ids"] for t in texts]})
    names = ["negative", "positive"]
    made_up = {
        "classification": {"captured": SimpleNamespace(predictions=rng.normal(size=(4, 2)), label_ids=[0, 1, 1, 0])},
        "multi_label": {"evaluation": {"eval_f1_negative": 0.5, "eval_support_negative": 2.0, "eval_f1_positive": 0.0}},
        "regression": {
            "captured": SimpleNamespace(predictions=rng.normal(size=(4, 1)), label_ids=rng.normal(size=(4, 1))),
            "model_settings": {"target_mean": [3.0], "target_std": [0.5]},
        },
        "qa": {
            "captured": SimpleNamespace(
                merger=SimpleNamespace(answers=lambda: {0: SimpleNamespace(text="Paris"), 1: SimpleNamespace(text="")}),
                golds={0: ["Paris"], 1: ["the old town"]},
            )
        },
        "token_classification": {
            "captured": SimpleNamespace(
                scheme="IOB2",
                label_names=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
                gold={0: [], 1: []},
                words={0: ["Angela", "Merkel", "visited", "Paris"], 1: ["Rome", "is", "old"]},
                tags=lambda: (
                    [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]],
                    [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "O"]],
                ),
            )
        },
    }
    views = {}
    for task, kind in TASKS.items():
        folder = tmp_path / task
        folder.mkdir()
        given = {"captured": None, "evaluation": {}, "model_settings": {}, **made_up[task]}
        drawn = views[task] = kind.results.view(
            ViewInputs(
                folder,
                given["captured"],
                tokenized,
                tokenizer,
                names,
                **{k: v for k, v in given.items() if k != "captured"},
            ),
            figures,
        )
        assert drawn.figures, task
        for figure in drawn.figures:
            assert (folder / figure.file).read_bytes().startswith(b"\x89PNG"), (task, figure.file)
    errors = views["classification"].errors
    assert errors and all(row["text"] in texts and row["label"] != row["predicted"] for row in errors)
    assert views["token_classification"].errors, "a sentence with a wrong entity is an error row"


@pytest.mark.parametrize(("mse", "flagged"), [(0.5, False), (1.2, True)])
def test_a_regression_model_kept_by_mse_is_measured_against_the_mean_the_right_way(mse: float, flagged: bool) -> None:
    """Lower mse is better: a model below the training mean's mse has learned something, one above it has not."""
    from nlp_transfer.report.diagnostics import diagnose

    found = diagnose(
        [{"step": 5, "eval_loss": 0.4, "eval_mse": mse}],
        metric="mse",
        best_checkpoint=None,
        planned_steps=5,
        early_stopping_patience=None,
        baseline={"name": "always the training mean", "mse": 1.0},
        final={"eval_mse": mse},
    )
    assert ("no_better_than_baseline" in found) is flagged
