"""Decisions every process of a multi-process run must take together (2 CPU processes under accelerate launch):
a stop request that reaches one rank stops both at the same step with one checkpoint, and the resumed run ends
with the metrics of an uninterrupted one; a NaN loss on one rank only skips (or stops at) the same step on both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from nlp_transfer.train.checkpoints import SEAL_FILE
from tests.conftest import REPO, free_port, write_recipe

pytestmark = pytest.mark.subprocess

ACCELERATE = Path(sys.executable).with_name("accelerate")
STEPS, CHECKPOINT_STEPS = 40, 4


def launch(args: list[str], tmp_path: Path, tag: str, script: str | None = None, **env: str) -> subprocess.Popen:
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    command += [script] if script else ["-m", "nlp_transfer"]
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_PORT": str(29700 + (os.getpid() + len(tag)) % 200),
        "NLP_TRANSFER_TEST_TAG": tag,  # finds this launch's worker processes in /proc
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.Popen(
        command + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=tmp_path
    )


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def worker_pid(tag: str, rank: int) -> int | None:
    """The pid of the worker process of rank `rank` started with NLP_TRANSFER_TEST_TAG=tag."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"NLP_TRANSFER_TEST_TAG={tag}".encode() in environ and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def eval_metrics(run: Path) -> dict[str, Any]:
    found = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
    return {k: v for k, v in found.items() if not k.endswith(("runtime", "per_second"))}


def test_a_stop_on_one_rank_stops_both_at_one_step_and_resumes_to_the_uninterrupted_metrics(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    train = {"max_steps": STEPS, "checkpoint_steps": CHECKPOINT_STEPS, "learning_rate": 5e-4, "batch_size": 4}
    straight = write_recipe(tmp_path / "straight", tiny_models["bert"], sentiment_csv, train=train)
    code, _, err = finished(launch(["run", str(straight)], tmp_path, "straight"))
    assert code == 0, err[-3000:]

    recipe = write_recipe(tmp_path / "stopped", tiny_models["bert"], sentiment_csv, train=train)
    run = tmp_path / "stopped" / "run"
    tag = uuid.uuid4().hex
    process = launch(["run", str(recipe)], tmp_path, tag)
    first = run / "checkpoints" / "train" / f"checkpoint-{CHECKPOINT_STEPS}" / SEAL_FILE
    deadline = time.monotonic() + 240
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = worker_pid(tag, rank=1)
    assert pid is not None and process.poll() is None, "rank 1 is not running"
    os.kill(pid, signal.SIGTERM)  # the second process only: rank 0 hears nothing
    code, _, err = finished(process)

    stops = [line for line in err.splitlines() if line.startswith("interrupted: stopped at step")]
    assert len(stops) == 2, err[-3000:]  # both processes stopped cleanly ...
    steps = {line.split("stopped at step ")[1].split()[0] for line in stops}
    assert len(steps) == 1, stops  # ... at the same step
    step = int(steps.pop())
    assert step < STEPS
    assert (run / "checkpoints" / "train" / f"checkpoint-{step}" / SEAL_FILE).is_file()
    assert json.loads((run / "run_status.json").read_text(encoding="utf-8"))["state"] == "interrupted"

    code, _, err = finished(launch(["run", str(recipe), "--resume"], tmp_path, uuid.uuid4().hex))
    assert code == 0, err[-3000:]
    assert f"resume: from {run / 'checkpoints' / 'train' / f'checkpoint-{step}'}" in (run / "run.log").read_text()
    assert eval_metrics(run) == eval_metrics(tmp_path / "straight" / "run")


@pytest.mark.parametrize(("skip", "outcome"), [(0, "stops"), (1, "skips")])
def test_a_nan_loss_on_one_rank_gives_the_same_outcome_on_both(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path, skip: int, outcome: str
) -> None:
    train = {"max_steps": 8, "checkpoint_steps": 2, "batch_size": 4, "skip_nonfinite_batches": skip}
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train=train)
    script = str(REPO / "tests" / "helpers" / "nan_on_one_rank.py")
    process = launch(["run", str(recipe)], tmp_path, uuid.uuid4().hex, script=script, NAN_RANK="1", NAN_STEPS="3")
    code, _, err = finished(process)
    status = json.loads((tmp_path / "run" / "run_status.json").read_text(encoding="utf-8"))
    if outcome == "stops":
        diverged = [line for line in err.splitlines() if line.startswith("error: training diverged")]
        assert len(diverged) == 2, err[-3000:]  # both processes stop, not one while the other waits
        assert all("at step 3 of phase train" in line for line in diverged)
        assert code != 0 and status["state"] == "failed"
    else:
        assert code == 0, err[-3000:]
        # Rank 1 saw the NaN (its warning on stderr); rank 0 skipped the same step for it (its own log: run.log).
        assert "step 3: loss is nan; batch skipped" in err, err[-3000:]
        run_log = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
        assert "step 3: loss is not finite on another process; batch skipped" in run_log
        assert status["state"] == "complete"
        history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
        assert max(entry["step"] for entry in history) == 8
