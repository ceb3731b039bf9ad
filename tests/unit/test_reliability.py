"""Reliability: a run killed (SIGKILL) or stopped (SIGTERM / Ctrl-C) mid-training resumes to exactly the metrics of
an uninterrupted run; damaged checkpoints are skipped; a changed recipe is refused; a NaN loss stops the run (or its
batch is skipped); the same recipe and seed give the same metrics; a recorded run is reproduced; the disk and the
output folder are checked before training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file

from nlp_transfer.core.files import sha256_file
from nlp_transfer.train.checkpoints import SEAL_FILE, by_step, last_usable, rotate, seal
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv

METHODS: dict[str, dict[str, Any]] = {
    "full": {"name": "full"},
    "lora": {"name": "lora", "r": 4},
    "probe": {"name": "probe"},  # head on cached features: its checkpoints hold the head alone
    "probe_then_finetune": {"name": "probe_then_finetune", "probe_epochs": 1},
}
# Steps per stage; checkpoints every CHECKPOINT_STEPS. Enough steps after the first checkpoint to be killed in time.
STEPS, CHECKPOINT_STEPS = 60, 5


def recipe_for(folder: Path, model: Path, data: Path, method: str, **train: Any) -> Path:
    return write_recipe(
        folder,
        model,
        data,
        method=METHODS[method],
        train={"max_steps": STEPS, "checkpoint_steps": CHECKPOINT_STEPS, "learning_rate": 5e-4, **train},
    )


def metrics_of(run: Path) -> dict[str, Any]:
    """Eval metrics without the timings (which no two runs share)."""
    found = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
    return {k: v for k, v in found.items() if not k.endswith(("runtime", "per_second"))}


def ok(*args: object) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def start_and_stop(
    recipe: Path, stage: str, how: signal.Signals, at_step: int = CHECKPOINT_STEPS
) -> subprocess.CompletedProcess[str]:
    """`nlp-transfer run` in a fresh process, sent `how` as soon as `stage` has sealed its checkpoint at `at_step`."""
    run = Path(yaml.safe_load(recipe.read_text(encoding="utf-8"))["output"]["dir"])
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nlp_transfer", "run", str(recipe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first = run / "checkpoints" / stage / f"checkpoint-{at_step}" / SEAL_FILE
    deadline = time.monotonic() + 240
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(how)
    out, err = process.communicate(timeout=240)
    state = json.loads((run / "run_status.json").read_text(encoding="utf-8"))["state"]
    assert state != "complete", f"the run finished before it could be stopped; raise STEPS\n{err}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Any]:
    """method -> the eval metrics of a run that nothing stopped (the recipes below are the same but for output)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    data = _sentiment_file(root)
    found = {}
    for method in METHODS:
        ok("run", recipe_for(root / method, tiny_models["bert"], data, method))
        found[method] = metrics_of(root / method / "run")
    return found


def _sentiment_file(folder: Path) -> Path:
    return write_sentiment_csv(folder / "sentiment.csv")


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("method", "stage", "how"),
    [
        ("full", "train", signal.SIGKILL),
        ("lora", "train", signal.SIGKILL),
        ("probe", "probe", signal.SIGKILL),
        ("probe_then_finetune", "finetune", signal.SIGKILL),  # killed in stage 2: stage 1 is not trained again
        ("full", "train", signal.SIGTERM),
        ("lora", "train", signal.SIGINT),
    ],
)
def test_a_stopped_run_resumes_to_the_metrics_of_an_uninterrupted_one(
    tmp_path: Path, tiny_models: dict[str, Path], uninterrupted: dict[str, Any], method: str, stage: str, how: Any
) -> None:
    recipe = recipe_for(tmp_path, tiny_models["bert"], _sentiment_file(tmp_path), method)
    run = tmp_path / "run"
    stopped = start_and_stop(recipe, stage, how)
    if how == signal.SIGKILL:
        assert stopped.returncode == -signal.SIGKILL
    else:  # a clean stop: a checkpoint at the step it stopped on, and how to resume
        assert stopped.returncode == 130, stopped.stderr
        assert "checkpoint saved" in stopped.stderr and "--resume" in stopped.stderr
        assert json.loads((run / "run_status.json").read_text(encoding="utf-8"))["state"] == "interrupted"
    if stage == "finetune":
        assert (run / "checkpoints" / "probe" / "phase_finished.json").is_file()
    resumed = ok("run", recipe, "--resume")
    assert "resuming" in (run / "run.log").read_text(encoding="utf-8")
    assert metrics_of(run) == uninterrupted[method]
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    assert status["state"] == "complete" and "resumed_at" in status
    assert "predict" in resumed.stdout
    if stage == "finetune":  # the probe stage's log lines are from the first process only: it was not redone
        log = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]
        probe_train_ends = [row for row in log if row["phase"] == "probe" and "train_runtime" in row]
        assert len(probe_train_ends) == 1


@pytest.mark.subprocess
def test_resume_skips_damaged_checkpoints_and_says_when_none_is_usable(
    tmp_path: Path, tiny_models: dict[str, Path], uninterrupted: dict[str, Any]
) -> None:
    recipe = recipe_for(tmp_path, tiny_models["bert"], _sentiment_file(tmp_path), "full")
    start_and_stop(recipe, "train", signal.SIGKILL, at_step=2 * CHECKPOINT_STEPS)  # two sealed checkpoints
    stage_dir = tmp_path / "run" / "checkpoints" / "train"
    sealed = [c for c in by_step(stage_dir) if (c / SEAL_FILE).is_file()]
    assert len(sealed) >= 2
    newest = sealed[0]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a disk error, a half-copied file
    killed_save = stage_dir / "checkpoint-999"  # a save killed half way: newer than all, never sealed
    shutil.copytree(newest, killed_save, ignore=shutil.ignore_patterns(SEAL_FILE, "optimizer.pt"))
    ok("run", recipe, "--resume")
    log = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert "checkpoint-999: not sealed (the save did not finish)" in log
    assert f"{newest.name}: model.safetensors is damaged" in log
    assert f"resume: from {sealed[1]}" in log
    assert metrics_of(tmp_path / "run") == uninterrupted["full"]  # the older checkpoint leads to the same end
    # Every checkpoint damaged: said clearly, nothing trained.
    start_and_stop(
        recipe_for(tmp_path / "b", tiny_models["bert"], _sentiment_file(tmp_path), "full"), "train", signal.SIGKILL
    )
    for checkpoint in by_step(tmp_path / "b" / "run" / "checkpoints" / "train"):
        (checkpoint / "optimizer.pt").unlink(missing_ok=True)
    error = user_error(invoke("run", tmp_path / "b" / "recipe.yaml", "--resume"), "no usable checkpoint", "--overwrite")
    assert "optimizer.pt is missing" in error or "not sealed" in error


def test_rotation_keeps_the_two_newest_sealed_checkpoints_the_best_and_a_save_in_progress(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4, 5, 6):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(bytes([step]) * 100)
        if step in (1, 2, 4, 5):
            seal(folder)
    rotate(tmp_path, protect=tmp_path / "checkpoint-1")  # checkpoint-1 is the best so far
    # 6: unsealed and newest (a save in progress); 5, 4: the newest sealed; 3: debris of a killed save; 2: old.
    kept = sorted(int(p.name.split("-")[1]) for p in tmp_path.iterdir())
    assert kept == [1, 4, 5, 6]
    assert last_usable(tmp_path).checkpoint == tmp_path / "checkpoint-5"
    (tmp_path / "checkpoint-5" / "model.safetensors").write_bytes(b"\0" * 100)  # same size, other bytes
    found = last_usable(tmp_path)
    assert found.checkpoint == tmp_path / "checkpoint-4"
    assert found.skipped == [
        "checkpoint-6: not sealed (the save did not finish)",
        "checkpoint-5: model.safetensors is damaged (size or sha256 differs from the seal)",
    ]


def test_resume_refuses_a_changed_recipe_unless_forced_and_foreign_or_finished_folders(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    recipe = recipe_for(tmp_path, tiny_models["bert"], _sentiment_file(tmp_path), "full", max_steps=12)
    run = tmp_path / "run"
    ok("run", recipe)
    user_error(invoke("run", recipe, "--resume"), "holds a complete run", "nothing to resume")
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    (run / "run_status.json").write_text(json.dumps(status | {"state": "interrupted"}), encoding="utf-8")
    changed = invoke("run", recipe, "--resume", "-o", "train.learning_rate=0.002", "-o", "train.seed=1")
    user_error(changed, "the recipe differs", "train.learning_rate: 0.0005 -> 0.002", "train.seed: 0 -> 1", "--force")
    ok("run", recipe, "--resume", "-o", "train.learning_rate=0.002", "--force")
    assert yaml.safe_load((run / "recipe.resolved.yaml").read_text(encoding="utf-8"))["train"]["learning_rate"] == 0.002
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "weights.bin").write_bytes(b"theirs")
    user_error(invoke("run", recipe, "--resume", "--output-dir", foreign), "not an nlp-transfer run folder")
    assert (foreign / "weights.bin").read_bytes() == b"theirs" and len(list(foreign.iterdir())) == 1
    user_error(invoke("run", recipe, "--resume", "--output-dir", tmp_path / "none"), "does not exist")
    user_error(invoke("run", recipe, "--resume", "--overwrite"), "choose one")


def test_a_nan_loss_stops_the_run_or_its_batch_is_skipped(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected into the real Trainer loop: the loss of steps 3 and 5 is NaN."""
    from transformers import Trainer

    real = Trainer.compute_loss
    calls = {"n": 0}

    def sometimes_nan(self: Any, *args: Any, **kwargs: Any) -> Any:
        loss = real(self, *args, **kwargs)
        calls["n"] += 1
        return loss * float("nan") if calls["n"] in (3, 5) else loss

    monkeypatch.setattr(Trainer, "compute_loss", sometimes_nan)
    data = _sentiment_file(tmp_path)
    recipe = recipe_for(tmp_path / "stop", tiny_models["bert"], data, "full", max_steps=8, checkpoint_steps=2)
    error = user_error(invoke("run", recipe), "training diverged", "step 3", "checkpoint-2", "skip_nonfinite_batches")
    assert "nan" in error
    assert json.loads((tmp_path / "stop" / "run" / "run_status.json").read_text(encoding="utf-8"))["state"] == "failed"

    calls["n"] = 0
    recipe = recipe_for(tmp_path / "skip", tiny_models["bert"], data, "full", max_steps=8, skip_nonfinite_batches=2)
    ok("run", recipe)
    log = (tmp_path / "skip" / "run" / "run.log").read_text(encoding="utf-8")
    assert "step 3: loss is nan; batch skipped" in log and "step 5: loss is nan; batch skipped" in log
    weights = load_file(tmp_path / "skip" / "run" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())  # nothing of the NaN reached the weights

    calls["n"] = 0
    recipe = recipe_for(tmp_path / "few", tiny_models["bert"], data, "full", max_steps=8, skip_nonfinite_batches=1)
    user_error(invoke("run", recipe), "step 5", "(1 bad batches skipped before)")


def test_same_recipe_and_seed_give_identical_metrics_and_reproduce_says_so(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    data = _sentiment_file(tmp_path)
    first = recipe_for(tmp_path / "a", tiny_models["bert"], data, "lora", max_steps=12)
    second = recipe_for(tmp_path / "b", tiny_models["bert"], data, "lora", max_steps=12)
    ok("run", first)
    ok("run", second)
    assert metrics_of(tmp_path / "a" / "run") == metrics_of(tmp_path / "b" / "run")
    environment = json.loads((tmp_path / "a" / "run" / "environment.json").read_text(encoding="utf-8"))
    assert environment["seed"] == 0 and environment["data_order_seed"] == 0
    assert environment["data_file_sha256"] == {str(data): sha256_file(data)}
    assert environment["libraries"]["torch"] and environment["recipe"]["file"] == str(first.resolve())

    again = tmp_path / "again"
    reproduced = ok("run", tmp_path / "a" / "run", "--reproduce", "--output-dir", again)
    assert "metrics: identical" in reproduced.stdout
    assert metrics_of(again) == metrics_of(tmp_path / "a" / "run")
    data.write_text(data.read_text(encoding="utf-8") + "one more,positive\n", encoding="utf-8")
    user_error(invoke("run", tmp_path / "a" / "run", "--reproduce"), "changed since the run")


def test_the_output_folder_and_free_space_are_checked_before_training(
    tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = recipe_for(tmp_path, tiny_models["bert"], _sentiment_file(tmp_path), "full", max_steps=4)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    user_error(invoke("run", recipe, "--output-dir", blocker / "run"), "cannot be written", "output.dir")

    import nlp_transfer.train.disk

    class Full:
        free = 10_000_000  # 10 MB: less than a tiny model with its checkpoints

    monkeypatch.setattr(nlp_transfer.train.disk.shutil, "disk_usage", lambda path: Full())
    user_error(invoke("run", recipe), "will write about", "10.0 MB free", "output.dir")
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_pickled_weights_are_never_loaded_and_remote_code_runs_only_when_asked(
    tmp_path: Path, tiny_models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    import torch as torch_module
    from safetensors.torch import load_file as read_safetensors

    pickled = tmp_path / "pickled-model"
    shutil.copytree(tiny_models["bert"], pickled)
    torch_module.save(read_safetensors(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()  # only a pickle left: loading it could run arbitrary code
    recipe = recipe_for(tmp_path / "pickle", pickled, _sentiment_file(tmp_path), "full", max_steps=2)
    user_error(invoke("run", recipe), "no file named model.safetensors", "safetensors weights")

    data = _sentiment_file(tmp_path)
    asked = write_recipe(
        tmp_path / "asked", tiny_models["bert"], data, model={"trust_remote_code": True}, train={"max_steps": 2}
    )
    ok("run", asked)
    assert "trust_remote_code is on" in caplog.text  # a warning while the model loads
    caplog.clear()
    plain = write_recipe(tmp_path / "plain", tiny_models["bert"], data, train={"max_steps": 2})
    ok("run", plain)
    assert "trust_remote_code" not in caplog.text
    assert yaml.safe_load(plain.read_text(encoding="utf-8"))["model"].get("trust_remote_code") is None  # default off


@pytest.mark.subprocess
def test_an_adapt_chain_killed_in_a_stage_resumes_that_stage(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    """A multi-stage (adapt) recipe: the finetune stage is killed mid-training; running the recipe again resumes it
    from its checkpoint and ends with the metrics of a chain nothing stopped."""
    from tests.unit.test_adapt import ELECTRONICS, _adapt_recipe, _jsonl, _rows

    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"text": r["text"]} for r in _rows(ELECTRONICS / "test.jsonl", 40)])
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, [{"name": "finetune"}])
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw["train"].update(max_steps=STEPS, checkpoint_steps=CHECKPOINT_STEPS)
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")

    ok("run", recipe, "--output-dir", tmp_path / "straight")
    stopped = tmp_path / "stopped"
    process = subprocess.Popen(
        [sys.executable, "-m", "nlp_transfer", "run", str(recipe), "--output-dir", str(stopped)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = stopped / "stages" / "finetune"
    sealed = run / "checkpoints" / "train" / f"checkpoint-{CHECKPOINT_STEPS}" / SEAL_FILE
    deadline = time.monotonic() + 240
    while not sealed.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait(timeout=60)
    assert json.loads((run / "run_status.json").read_text(encoding="utf-8"))["state"] == "running"  # died

    ok("run", recipe, "--resume", "--output-dir", stopped)
    assert "resuming" in (run / "run.log").read_text(encoding="utf-8")
    assert metrics_of(run) == metrics_of(tmp_path / "straight" / "stages" / "finetune")


def test_a_recipe_cannot_run_code_through_yaml_tags(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f'model: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    user_error(invoke("validate", recipe), str(recipe), "not valid YAML")
    user_error(invoke("run", recipe), "not valid YAML")
    assert not marker.exists()  # yaml.safe_load refused the tag; nothing ran
