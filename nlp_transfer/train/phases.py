"""Train a prepared run's phases in order, evaluate, save what the method says, and mark the folder complete.

A method trains in one or more phases (probe_then_finetune: `probe`, then `finetune`; the others one `train` phase).
Each phase has its own Trainer and checkpoints (checkpoints/<phase>/). A phase that finished is recorded
(checkpoints/<phase>/phase_finished.*) so a resumed run does not train it again; the phase that was cut short
continues from its last good checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from nlp_transfer.core import distributed
from nlp_transfer.methods import PhaseContext, parameter_counts
from nlp_transfer.report import report
from nlp_transfer.report.card import model_card
from nlp_transfer.report.card_usage import example_call
from nlp_transfer.report.diagnostics import diagnose
from nlp_transfer.runfolder.folder import (
    CARD_FILE,
    CHECKPOINTS_DIR,
    METRICS_FILE,
    THRESHOLDS_FILE,
    TOKENIZER_RECORD,
    TRAINER_STATE,
    RunFolder,
    tokenizer_record,
)
from nlp_transfer.runfolder.result import RunResult
from nlp_transfer.tasks.results import EvalSource
from nlp_transfer.train import interruption, phase_records
from nlp_transfer.train.callbacks import quiet_progress
from nlp_transfer.train.sharding import gathered_model
from nlp_transfer.train.trainer import build_trainer, stopped_on_request

if TYPE_CHECKING:
    from nlp_transfer.train.pipeline import PreparedRun

log = logging.getLogger(__name__)


@dataclass
class PhasesDone:
    """What training the method's phases leaves for the steps after it."""

    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase -> its train and eval metrics
    history: list[dict[str, Any]] = field(default_factory=list)  # every phase's log, each entry tagged with its phase
    seen: Any = None  # what the last evaluation's metric saw (the task's batch-by-batch metric), for the figures
    trainer: Any = None  # the last phase's Trainer, holding its kept checkpoint
    inputs: Any = None  # the last phase's inputs (its splits)
    last: str = ""  # the last phase's name


def train_and_save(
    setup: PreparedRun, folder: RunFolder, resume: bool = False, callbacks: Sequence[TrainerCallback] = ()
) -> RunResult:
    """Train the method's phases in order, evaluate the final model, save what the method says, mark complete.
    `callbacks` join every phase's Trainer (a tune trial's pruning)."""
    started = time.perf_counter()
    done = _train_phases(setup, folder, resume, callbacks)
    # Decisions tuned on the eval split by the final evaluation (multi-label thresholds) hold for the test split.
    decisions = setup.prepared.settle() if setup.prepared.settle is not None else None
    metrics = _final_metrics(setup, done, started)
    if folder.writer:
        metrics["report"] = _figures(setup, folder, done, metrics)
    _save(setup, folder, done, metrics, decisions)
    _finish(setup, folder)
    example = metrics.get("report", {}).get("example")
    shown = example_call(setup.task.pipeline_tag, example)[1] if example else setup.task.predict_example
    return RunResult(run_dir=folder.path, metrics=metrics, notes=setup.notes, predict_example=shown)


def _train_phases(
    setup: PreparedRun, folder: RunFolder, resume: bool, callbacks: Sequence[TrainerCallback]
) -> PhasesDone:
    recipe = setup.loaded.recipe
    context = PhaseContext(
        prepared=setup.prepared,
        tokenizer=setup.tokenizer,
        train=recipe.train,
        main_first=distributed.main_first,
        precision=setup.precision,
        pooled_features=setup.task.pooled_features,
    )
    done = PhasesDone()
    planned = setup.method.phases(setup.model, context)
    # Resuming: rank 0 reads the phase records and checkpoints, every process does what it decided.
    plan = phase_records.decide_resume(folder.path, [p.name for p in planned]) if resume else {}
    for index, phase in enumerate(planned):
        log.info("phase %s", phase.name)
        phase_started = time.perf_counter()
        phase_dir = folder.path / CHECKPOINTS_DIR / phase.name
        done.inputs = phase.build()  # e.g. extracts probe features, or unfreezes the encoder after the probe phase
        done.trainer = build_trainer(
            done.inputs,
            setup.tokenizer,
            setup.prepared,
            folder.path,
            phase.name,
            main_metric=recipe.train.metric_for_best,
            extra_callbacks=callbacks,
        )
        done.last = phase.name
        decided = plan.get(phase.name)
        finished = decided.finished if decided is not None else None
        if finished is not None:
            phase_records.load_finished(setup.model, phase_dir)
            log.info("phase %s finished before the interruption: not trained again", phase.name)
            done.phases[phase.name] = finished["metrics"]
            done.history += finished["history"]
            continue
        phase_history = _train_phase(setup, folder, done, phase.name, decided, phase_started)
        if index < len(planned) - 1 and folder.writer:  # a later phase may be interrupted: keep this one's result
            phase_records.record_finished(phase_dir, setup.model, done.phases[phase.name], phase_history)
    return done


def _train_phase(
    setup: PreparedRun, folder: RunFolder, done: PhasesDone, name: str, decided: Any, phase_started: float
) -> list[dict[str, Any]]:
    """Train one phase (from its last good checkpoint when resuming) and score its kept checkpoint; its log."""
    trainer, inputs = done.trainer, done.inputs
    start = decided.checkpoint if decided is not None else None
    with interruption.training():
        train_output = trainer.train(resume_from_checkpoint=start)
    if stopped_on_request(trainer):  # on any process: every process stops here together
        raise interruption.RunInterrupted(
            phase_records.stopped_message(folder.path, name, trainer.state.global_step, setup.loaded.path)
        )
    # The log of training itself (the evaluations below score the kept checkpoint again, after the fact).
    phase_history = [{"phase": name, **entry} for entry in trainer.state.log_history]
    quiet_progress(trainer)
    done.phases[name] = {
        "train": {
            **train_output.metrics,
            **parameter_counts(setup.model),  # after build: a later phase may train more than the first
            **inputs.info,
            "phase_wall_seconds": round(time.perf_counter() - phase_started, 2),
        },
        # The phase's best checkpoint, reloaded at its end; a phase with no eval split (contrastive pairs) has none.
        "eval": trainer.evaluate(metric_key_prefix="eval") if "eval" in inputs.splits else {},
    }
    # What that evaluation's metric saw, for the report (the test evaluation below must not replace it).
    done.seen = trainer.compute_metrics  # the task's batch-by-batch metric keeps what it saw
    done.history += phase_history
    return phase_history


def _final_metrics(setup: PreparedRun, done: PhasesDone, started: float) -> dict[str, Any]:
    """metrics.json: the last phase's train and eval scores, the test split's, every phase's, the diagnostics."""
    recipe = setup.loaded.recipe
    last = done.phases[done.last]
    metrics: dict[str, Any] = {
        "train": {
            **last["train"],
            "method": recipe.method.name,
            "precision": setup.precision.name,
            "compile": recipe.train.compile,
            "train_wall_seconds": round(time.perf_counter() - started, 2),  # all phases, feature extraction included
        },
        "eval": last["eval"],
    }
    if "test" in done.inputs.splits:
        metrics["test"] = done.trainer.evaluate(done.inputs.splits["test"], metric_key_prefix="test")
    if len(done.phases) > 1:
        metrics["phases"] = done.phases
    last_history = [e for e in done.history if e.get("phase") == done.last]
    metrics["diagnostics"] = _diagnostics(setup, done.trainer, last_history, metrics["eval"])
    return metrics


def _figures(setup: PreparedRun, folder: RunFolder, done: PhasesDone, metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's figures and the task's view of its eval predictions (metrics.json's `report`), and the card's
    usage example from the eval rows."""
    recipe = setup.loaded.recipe
    metric = str(recipe.train.metric_for_best)
    drawn = report.draw(
        folder.path,
        task=recipe.task.name,
        history=done.history,
        metric=metric,
        kept_step=metrics["diagnostics"]["kept"].get("step"),
        captured=done.seen,  # None when every phase had finished before a resume
        tokenized=setup.prepared.splits.get("eval"),
        tokenizer=setup.tokenizer,
        label_names=setup.prepared.label_names,
        evaluation=metrics["eval"],
        model_settings=setup.prepared.config_attributes,
        baseline=metrics["diagnostics"].get("baseline", {}).get(metric),
        source=EvalSource(setup.data, recipe.task) if "eval" in setup.data.splits else None,
    )
    rows = setup.data.splits.get("eval")
    example = setup.task.results.example(rows, recipe.task) if rows is not None else None
    if example is not None:
        drawn["example"] = example
    return drawn


def _save(setup: PreparedRun, folder: RunFolder, done: PhasesDone, metrics: dict[str, Any], decisions: Any) -> None:
    """The model as the method saves it, its tokenizer's record, the thresholds, the log, the metrics, the card."""
    to_save = gathered_model(done.trainer, setup.model, folder.writer)  # FSDP / ZeRO-3: every process gathers
    if folder.writer:
        setup.method.save(
            to_save,
            folder.path,
            tokenizer=setup.tokenizer,
            base_model=setup.model_asset.hub_id or setup.model_asset.location,
        )
        folder.write_json(TOKENIZER_RECORD, tokenizer_record(folder.path, setup.tokenizer))
    if decisions is not None:
        folder.write_json(THRESHOLDS_FILE, decisions)
    folder.write_json(TRAINER_STATE, {"log_history": done.history})
    folder.write_json(METRICS_FILE, metrics)
    if folder.writer:
        folder.write_text(CARD_FILE, model_card(folder.path))  # from the files just written, as push renders it
        report.write_html(folder.path, state="complete")  # marked complete just below


def _finish(setup: PreparedRun, folder: RunFolder) -> None:
    """Checkpoints dropped unless the recipe keeps them, then the folder marked complete (written last)."""
    if folder.writer and not setup.loaded.recipe.output.keep_checkpoints:
        shutil.rmtree(folder.path / CHECKPOINTS_DIR, ignore_errors=True)
    folder.mark("complete")


def _diagnostics(
    setup: PreparedRun, trainer: Any, history: list[dict[str, Any]], final: dict[str, Any]
) -> dict[str, Any]:
    train = setup.loaded.recipe.train
    metric = str(train.metric_for_best)
    found = diagnose(
        history,
        metric=metric,
        best_checkpoint=trainer.state.best_model_checkpoint,
        planned_steps=trainer.state.max_steps,
        early_stopping_patience=train.early_stopping_patience,
        baseline=setup.task.results.baseline(setup.prepared),
        final=final,
    )
    return {"metric": metric, **found}
