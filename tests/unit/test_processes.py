"""What a run leaves in the process and on the devices: probe features stay on the CPU a recipe asks for, a finished
run's report says it is complete, a refused sharded combination, checkpoint seals that do not hold training, and
cells of a study that each start clean."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.methods.base import PhaseContext
from nlp_transfer.recipe import load_recipe
from nlp_transfer.train.pipeline import RunOptions, prepare_run
from tests.conftest import invoke, write_recipe


def test_probe_features_stay_on_the_cpu_when_use_cpu_is_set(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], sentiment_csv, method={"name": "probe"}, train={"trainer": {"use_cpu": True}}
    )
    loaded = load_recipe(recipe)
    setup = prepare_run(loaded, RunOptions())
    context = PhaseContext(prepared=setup.prepared, tokenizer=setup.tokenizer, train=loaded.recipe.train)
    # A machine with a GPU, as far as the code can tell; this CPU build of torch cannot move anything onto it.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)

    inputs = setup.method.phases(setup.model, context)[0].build()

    assert next(setup.model.parameters()).device.type == "cpu"
    assert len(inputs.splits["train"]) == len(setup.prepared.splits["train"])


def test_the_report_of_a_finished_run_says_complete(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    assert invoke("run", recipe).exit_code == 0
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert re.search(r"Run (\w+);", page).group(1) == "complete"  # type: ignore[union-attr]


def test_methods_in_phases_are_refused_under_sharded_launches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each phase is saved on the main process for a resumed run and loaded back into the model: sharded weights
    would be saved in part and reloaded into shards. accelerate passes its launch config as environment; a whole
    ZeRO-3 or FSDP launch needs DeepSpeed and GPUs, so the check that refuses it runs here on its own."""
    from transformers import BertConfig, BertForSequenceClassification

    from nlp_transfer.methods import METHODS
    from nlp_transfer.train.sharding import check_sharding

    plain = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2))
    phased = {name: bool(getattr(METHODS[name], "phased", False)) for name in METHODS}
    assert phased["probe_then_finetune"] and phased["contrastive"] and not phased["full"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    with pytest.raises(UserError, match="method probe_then_finetune under DeepSpeed ZeRO-3: its phases are saved"):
        check_sharding(plain, "probe_then_finetune", phased=phased["probe_then_finetune"])
    check_sharding(plain, "full", phased=phased["full"])
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # FSDP applies to GPU launches only
    with pytest.raises(UserError, match="method probe_then_finetune under FSDP"):
        check_sharding(plain, "probe_then_finetune", phased=phased["probe_then_finetune"])


def test_sealing_a_checkpoint_does_not_hold_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing a checkpoint of gigabytes takes seconds; on the saving process's own thread it would hold every
    process of a launch at the next step. The save returns at once, and the phase's end waits for the seal."""
    import threading
    import time
    from types import SimpleNamespace

    from nlp_transfer.train import checkpoints
    from nlp_transfer.train.callbacks import SealCheckpoints

    hashing = threading.Event()
    real_seal = checkpoints.seal

    def slow_seal(checkpoint: Path) -> None:
        hashing.wait(timeout=5)  # the hashing of a big checkpoint: done when the test says so
        real_seal(checkpoint)

    monkeypatch.setattr(checkpoints, "seal", slow_seal)
    phase_dir = tmp_path / "checkpoints" / "train"
    for step in (1, 2, 3, 4):
        (phase_dir / f"checkpoint-{step}").mkdir(parents=True)
        (phase_dir / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"weights %d" % step)
    args = SimpleNamespace(should_save=True, output_dir=str(phase_dir))
    callback = SealCheckpoints()

    started = time.monotonic()
    for step in (1, 2, 3, 4):
        callback.on_save(args, SimpleNamespace(global_step=step, best_model_checkpoint=None), None)
    assert time.monotonic() - started < 1.0  # the saves returned while the hashing went on
    assert not (phase_dir / "checkpoint-1" / checkpoints.SEAL_FILE).exists()

    hashing.set()
    callback.on_train_end(args, SimpleNamespace(global_step=4), None)
    # In order: each seal, then its rotation; the newest KEEP sealed checkpoints are left, every one whole.
    assert [p.name for p in checkpoints.by_step(phase_dir)] == ["checkpoint-4", "checkpoint-3"][: checkpoints.KEEP]
    assert all(checkpoints.problem(p) is None for p in checkpoints.by_step(phase_dir))


def test_a_run_starts_clean_and_leaves_the_process_as_it_found_it(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compare, tune and adapt train their cells one after another in one process: a cell must not inherit what
    the process held before it (library messages, a stop request) nor leave behind its trackers' folders, the
    progress-bar switches or its model."""
    import logging
    import os
    import weakref

    import transformers

    from nlp_transfer.core.quiet import quiet_libraries
    from nlp_transfer.train import pipeline
    from nlp_transfer.train.interruption import STOP
    from nlp_transfer.train.pipeline import run

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)
    transformers.utils.logging.enable_progress_bar()
    with quiet_libraries():  # what a library said while an earlier cell (or the study itself) loaded
        logging.getLogger("transformers").warning("said before this run began")
    STOP.requested = True  # a stop request an earlier cell never acted on

    models: list[weakref.ref[Any]] = []
    real_prepare = pipeline.prepare_run

    def prepare_run(*args: Any) -> Any:
        setup = real_prepare(*args)
        models.append(weakref.ref(setup.model))
        return setup

    monkeypatch.setattr(pipeline, "prepare_run", prepare_run)
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"report_to": ["mlflow"]})
    folder = run(load_recipe(recipe), RunOptions()).run_dir

    assert json.loads((folder / "run_status.json").read_text())["state"] == "complete"  # not stopped
    assert "said before this run began" not in (folder / "run.log").read_text(encoding="utf-8")
    assert (folder / "mlruns").is_dir()  # MLflow wrote under the run folder while it ran ...
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # ... not after
    assert transformers.utils.logging.is_progress_bar_enabled()
    assert models and models[0]() is None  # the run's model is freed when it returns
