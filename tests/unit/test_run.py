"""End to end through the CLI, as a user runs it, on tiny BERT / DistilBERT / RoBERTa / GPT-2 models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from nlp_transfer.cli import app
from tests.conftest import write_recipe

RUN_FILES = {
    "recipe.resolved.yaml",
    "metrics.json",
    "environment.json",
    "README.md",
    "trainer_log.jsonl",
    "run_status.json",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
}


def _run(recipe: Path, *extra: str) -> Path:
    result = CliRunner().invoke(app, ["run", str(recipe), *extra])
    assert result.exit_code == 0, result.output
    return Path(yaml.safe_load(recipe.read_text())["output"]["dir"])


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "roberta", "gpt2"])
def test_run_writes_a_complete_loadable_run_folder(
    architecture: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models[architecture], sentiment_csv, data={"eval_fraction": 0.25})
    run_dir = _run(recipe)

    assert {p.name for p in run_dir.iterdir()} >= RUN_FILES
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "training_args.bin").exists()
    assert json.loads((run_dir / "run_status.json").read_text())["state"] == "complete"

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("train_runtime", "train_samples_per_second", "train_loss", "trainable_parameters"):
        assert key in metrics["train"]
    for key in ("eval_accuracy", "eval_macro_f1", "eval_loss", "eval_runtime", "eval_samples_per_second"):
        assert key in metrics["eval"]
    assert {"precision_negative", "recall_positive"} <= {k.removeprefix("eval_") for k in metrics["eval"]}

    # Plain transformers loads it, with the label names in the config.
    model = AutoModelForSequenceClassification.from_pretrained(run_dir)
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert tokenizer.pad_token is not None and model.config.pad_token_id == tokenizer.pad_token_id

    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["seed"] == 0 and environment["libraries"]["transformers"]
    assert [len(digest) for digest in environment["data_file_sha256"].values()] == [64]  # one file, sha256
    card = (run_dir / "README.md").read_text()
    for fact in ("## Base model", "## Labels", "## Metrics", "learning rate", "method: full"):
        assert fact in card

    # predict: label + probability for each text, probabilities sum to 1.
    predicted = CliRunner().invoke(app, ["predict", str(run_dir), "great movie", "awful acting"])
    assert predicted.exit_code == 0, predicted.output
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["great movie", "awful acting"]
    for row in rows:
        assert row["label"] in {"negative", "positive"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert row["probability"] == max(row["probabilities"].values())


def test_gpt2_gets_a_pad_token_and_batches_of_mixed_lengths(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    assert AutoTokenizer.from_pretrained(tiny_models["gpt2"]).pad_token is None  # the base has none
    run_dir = tmp_path / "run"
    texts = tmp_path / "texts.txt"
    texts.write_text("short\na much longer sentence with many more words in it than the first one\n")
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"{'word ' * (i % 7 + 1)}{i},{i % 2}\n" for i in range(40)))
    recipe = write_recipe(tmp_path, tiny_models["gpt2"], data, output={"dir": str(run_dir)})
    _run(recipe)
    # Padding a short text in a batch with a long one must not change its prediction (last real token is used).
    alone = CliRunner().invoke(app, ["predict", str(run_dir), "short"])
    batched = CliRunner().invoke(app, ["predict", str(run_dir), "--file", str(texts)])
    assert alone.exit_code == 0 and batched.exit_code == 0, batched.output
    first_alone = json.loads(alone.stdout.splitlines()[0])["probabilities"]
    first_batched = json.loads(batched.stdout.splitlines()[0])["probabilities"]
    assert first_alone == pytest.approx(first_batched, abs=1e-4)


def test_same_seed_same_metrics_and_overrides_reach_the_run(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    first = write_recipe(tmp_path / "a", tiny_models["bert"], sentiment_csv)
    second = write_recipe(tmp_path / "b", tiny_models["bert"], sentiment_csv)
    run_a = _run(first, "-o", "train.learning_rate=5e-4")
    run_b = _run(second, "-o", "train.learning_rate=5e-4")
    metrics_a = json.loads((run_a / "metrics.json").read_text())
    metrics_b = json.loads((run_b / "metrics.json").read_text())
    assert metrics_a["eval"]["eval_loss"] == metrics_b["eval"]["eval_loss"]
    assert metrics_a["train"]["train_loss"] == metrics_b["train"]["train_loss"]
    assert yaml.safe_load((run_a / "recipe.resolved.yaml").read_text())["train"]["learning_rate"] == 5e-4


def test_predict_writes_jsonl_from_a_jsonl_file(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    run_dir = _run(write_recipe(tmp_path, tiny_models["distilbert"], sentiment_csv))
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "loved it"}\n{"text": "hated it"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--file", str(inputs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["loved it", "hated it"]


def test_early_stopping_and_best_checkpoint_on_chosen_metric(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        sentiment_csv,
        train={"epochs": 30, "early_stopping_patience": 1, "metric_for_best": "loss", "learning_rate": 1e-2},
    )
    run_dir = _run(recipe)
    evals = [json.loads(line) for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    eval_epochs = [row["epoch"] for row in evals if "eval_loss" in row]
    assert len(eval_epochs) < 30, "early stopping should end training before 30 epochs"
    losses = [row["eval_loss"] for row in evals if "eval_loss" in row]
    final = json.loads((run_dir / "metrics.json").read_text())["eval"]["eval_loss"]
    assert final == pytest.approx(min(losses), rel=1e-4)  # the best checkpoint was kept, not the last


@pytest.mark.subprocess
def test_sigterm_mid_training_marks_the_run_interrupted(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 500})
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "nlp_transfer.cli", "run", str(recipe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "trainer_log.jsonl").exists() and time.monotonic() < deadline:  # training has begun
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()[-2000:]
    assert json.loads((run_dir / "run_status.json").read_text())["state"] == "interrupted"
    assert not (run_dir / "metrics.json").exists()
