"""A recipe runs unchanged under `accelerate launch` with 2 CPU processes (gloo), for full, probe and LoRA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, write_recipe

pytestmark = pytest.mark.subprocess

ACCELERATE = Path(sys.executable).with_name("accelerate")


@pytest.mark.parametrize("method", ["full", "probe", "lora"])
def test_two_processes_write_one_complete_run(
    method: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, method={"name": method}, train={"epochs": 2})
    # --multi_gpu makes accelerate start one process per rank (torchrun); without GPUs nlp-transfer joins them with
    # gloo. Plain --num_processes 2 on a CPU-only machine starts a single process.
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "nlp_transfer", "run", str(recipe)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "run_status.json").read_text())["state"] == "complete"
    assert json.loads((run_dir / "environment.json").read_text())["processes"] == 2
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and p.name != "run"] == []  # one folder, no strays
    assert done.stdout.count("run folder:") == 1  # one summary, from the main process

    # 86 training rows, batch 8, 2 epochs: 22 steps in one process; 2 processes share each step's batches.
    history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
    assert max(entry["step"] for entry in history) == 12
    logged = [json.loads(line) for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    loss_steps = [entry["step"] for entry in logged if "loss" in entry]
    assert loss_steps and len(loss_steps) == len(set(loss_steps)), "each loss line written once (main process only)"
    assert json.loads((run_dir / "metrics.json").read_text())["train"]["method"] == method


def test_two_processes_score_qa_like_one(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """QA metrics are computed batch by batch from windows gathered across processes: the order and the count must
    survive the gathering, so the run's EM/F1 equal those of predicting the same questions in one process."""
    import yaml

    from nlp_transfer.data.readers import read_squad_json
    from nlp_transfer.tasks.metrics import squad_metrics
    from nlp_transfer.use.predict import open_predictor
    from tests.conftest import DATA_ROOT

    dev = DATA_ROOT / "squad_mini" / "dev.json"
    rows = list(read_squad_json(dev.read_text(encoding="utf-8"), dev, "data.eval") or [])[:13]  # 13: uneven batches
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": {"name": str(tiny_models["bert"])},
                "task": {"name": "qa", "max_length": 96, "stride": 24},
                "data": {"train": "squad_mini/train.json", "eval": str(eval_file), "max_train_samples": 24},
                "train": {"epochs": 1, "batch_size": 4, "eval_batch_size": 3, "learning_rate": 1e-3, "seed": 0},
                "output": {"dir": str(tmp_path / "run")},
            }
        ),
        encoding="utf-8",
    )
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "nlp_transfer", "run", str(recipe)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29600 + os.getpid() % 1000)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    reported = json.loads((tmp_path / "run" / "metrics.json").read_text())["eval"]
    assert reported["eval_total"] == 13  # every question once: no window lost or duplicated by the gathering
    answers = list(open_predictor(tmp_path / "run").predict(rows))
    alone = squad_metrics([a["answer"] or "" for a in answers], [r["answers"]["text"] for r in rows])
    assert reported["eval_f1"] == pytest.approx(alone["f1"]) and alone["f1"] > 0
    assert reported["eval_exact_match"] == pytest.approx(alone["exact_match"])
