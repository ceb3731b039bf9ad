"""Reporting reads a run folder's files and nothing else: a card, report.html and the rebuilt report come from a run
folder written by hand here, with no training, no model weights and the training engine never imported (the report room
sits below train/ in the layers contract; this checks the same thing at run time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

RECIPE = {
    "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
    "task": {"name": "classification", "text": "sentence", "label": "label"},
    "method": {"name": "full"},
    "data": {"train": "sst2/train.tsv", "eval": "sst2/dev.tsv"},
}
METRICS = {
    "train": {
        "train_loss": 0.41,
        "method": "full",
        "precision": "bf16",
        "train_wall_seconds": 160.2,
        "trainable_parameters": 22_713_602,
        "total_parameters": 22_713_602,
        "epoch": 1.0,
    },
    "eval": {"eval_accuracy": 0.8761, "eval_f1": 0.8790, "eval_loss": 0.3120},
    "diagnostics": {
        "metric": "accuracy",
        "kept": {"step": 600, "reason": "best eval accuracy"},
        "baseline": {"name": "majority class", "accuracy": 0.5092},
    },
}


def fixture_run(folder: Path) -> Path:
    """A complete classification run folder as training leaves it, minus the weights reporting never reads."""
    folder.mkdir()
    (folder / "recipe.resolved.yaml").write_text(yaml.safe_dump(RECIPE), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    (folder / "config.json").write_text(
        json.dumps({"model_type": "bert", "id2label": {"0": "negative", "1": "positive"}}), encoding="utf-8"
    )
    (folder / "task.json").write_text(json.dumps({"class_weights": None}), encoding="utf-8")
    (folder / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"step": 300, "loss": 0.5}, {"step": 600, "eval_accuracy": 0.8761}]}),
        encoding="utf-8",
    )
    (folder / "run_status.json").write_text(json.dumps({"state": "complete"}), encoding="utf-8")
    return folder


@pytest.mark.subprocess  # a fresh interpreter, so what reporting imports is all that is loaded
def test_a_card_and_a_report_come_from_the_files_of_a_run_folder(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    script = f"""
import json
import sys
from pathlib import Path
from nlp_transfer.report.card import model_card
from nlp_transfer.report.report import rebuild
run = Path({str(run)!r})
card = model_card(run)
page = rebuild([run], None).read_text(encoding="utf-8")
engine = sorted(name for name in sys.modules if name.startswith("nlp_transfer.train"))
print(json.dumps([card, page, engine]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    card, page, engine = json.loads(done.stdout.strip().splitlines()[-1])
    assert engine == []  # reporting did not load the training engine
    assert "- 0: negative" in card and "- 1: positive" in card  # the classes, from config.json
    assert "0.8761" in card or "87.61" in card  # the eval metric, from metrics.json
    assert "all-MiniLM-L6-v2" in card
    assert "0.8761" in page or "87.61" in page
    assert "majority class" in page
