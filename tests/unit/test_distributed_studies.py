"""Studies under `accelerate launch` with 2 CPU processes (gloo): compare trains every cell in both processes and
writes its record and table once; adapt and tune refuse in one line before anything starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, invoke, write_recipe

pytestmark = pytest.mark.subprocess

ACCELERATE = Path(sys.executable).with_name("accelerate")
HELPERS = REPO / "tests" / "helpers"


def launch(
    args: list[str], cwd: Path, timeout: int = 300, script: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    command += [str(script), *args] if script else ["-m", "nlp_transfer", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


@pytest.mark.heavy
def test_compare_under_two_processes_writes_one_complete_table(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 2})
    out = tmp_path / "compare"
    done = launch(
        ["compare", str(recipe), "--methods", "full,probe", "--output-dir", str(out), "--keep-runs"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["compare"]  # no stray folders
    record = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert sorted(cell["method"] for cell in record["cells"]) == ["full", "probe"]  # each cell once
    rows = [line for line in (out / "compare.md").read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    for cell in record["cells"]:
        assert sum(f" {cell['method']} " in row for row in rows) == 1  # one row per method in the table
        run = out / "runs" / f"{cell['method']}-n{cell['train_size']}-s0"
        assert json.loads((run / "run_status.json").read_text())["state"] == "complete"
        assert json.loads((run / "environment.json").read_text())["processes"] == 2  # both trained the cell
        logged = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines()]
        steps = [(entry["phase"], entry["step"]) for entry in logged if "loss" in entry]
        assert steps and len(steps) == len(set(steps)), "each loss line written once"
    assert done.stdout.count("compare folder:") == 1  # one voice
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "learning_curve.png", "runs"]


@pytest.mark.parametrize("command", ["adapt", "tune"])
def test_studies_that_cannot_share_processes_refuse_in_one_line(
    command: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, output={"root": str(tmp_path / "runs")})
    done = launch([command, str(recipe)], tmp_path, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and errors[0].startswith(f"error: {command} under accelerate launch: "), done.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "run").exists()


@pytest.mark.heavy
def test_resume_follows_rank_0_when_the_processes_share_no_disk(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """A probe_then_finetune run stopped after its probe phase resumes under 2 processes whose disks differ (each
    works in a folder of its own): rank 0 reads the phase record and sends its decision and the probe's weights,
    so the other process skips the probe phase too instead of training it alone (which would hang both)."""
    method = {"name": "probe_then_finetune", "probe_epochs": 1}
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, method=method, output={"dir": "run"})
    run = tmp_path / "disks" / "rank0" / "run"
    assert invoke("run", recipe, "--output-dir", run, "-o", "output.keep_checkpoints=true").exit_code == 0
    first = json.loads((run / "metrics.json").read_text())["phases"]
    # As if stopped before the finetune phase saved anything: the probe phase's record is all that is left of it.
    shutil.rmtree(run / "checkpoints" / "finetune")
    status = json.loads((run / "run_status.json").read_text())
    (run / "run_status.json").write_text(json.dumps({**status, "state": "interrupted"}))

    args = ["run", str(recipe), "--resume", "-o", "output.keep_checkpoints=true"]
    done = launch(args, tmp_path, timeout=240, script=HELPERS / "own_disk_per_rank.py", OWN_DISKS=str(run.parents[1]))
    assert done.returncode == 0, done.stderr[-3000:]

    assert json.loads((run / "run_status.json").read_text())["state"] == "complete"
    resumed = json.loads((run / "metrics.json").read_text())["phases"]
    assert resumed["probe"] == first["probe"]  # from the record: not trained again
    assert resumed["finetune"]["train"]["train_runtime"] > 0
    assert not (run.parents[1] / "rank1" / "run" / "run_status.json").exists()  # rank 1 wrote nothing
