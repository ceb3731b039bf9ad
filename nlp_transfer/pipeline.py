"""One run, top to bottom: recipe -> assets -> data -> tokenized data -> model -> method -> Trainer -> evaluation
-> run folder. No branching on task or method names: the TASKS and METHODS tables decide.

Everything that can fail on bad input (assets, data, labels, tokenization, model, TrainingArguments) happens in
prepare_run(), before the run folder exists, so a typo never leaves a folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import safetensors.torch
import transformers
from torch import nn
from transformers import PreTrainedTokenizerBase, set_seed

from nlp_transfer import checkpoints, distributed, interruption
from nlp_transfer.assets import Asset, default_data_root, resolve_model
from nlp_transfer.cards import CARD_FILE, model_card
from nlp_transfer.data import LoadedData, load_data
from nlp_transfer.disk import bytes_needed, check_room
from nlp_transfer.errors import UserError
from nlp_transfer.methods import METHODS, Method, StageContext, parameter_counts
from nlp_transfer.models import load_model, load_tokenizer
from nlp_transfer.recipe import LoadedRecipe
from nlp_transfer.record import environment_record
from nlp_transfer.resume import check_resumable, resume_target
from nlp_transfer.runfolder import (
    RunFolder,
    check_run_target,
    default_run_dir,
    open_run_folder,
    reopen_run_folder,
    worker_folder,
)
from nlp_transfer.tasks import TASKS, PreparedTask, Task
from nlp_transfer.tasks.classification import normalise_label
from nlp_transfer.trained import RECIPE_FILE
from nlp_transfer.training import build_trainer, training_arguments

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    output_dir: Path | None = None  # overrides output.dir
    overwrite: bool = False
    data_root: Path | None = None  # overrides $NLP_TRANSFER_DATA and ../shared/data
    extra_train: ExtraRows | None = None  # labelled rows added to data.train (self-training's pseudo-labels)
    resume: bool = False  # continue an unfinished run folder from its last good checkpoint (resume.py)
    force: bool = False  # resume even though the recipe changed


@dataclass
class ExtraRows:
    """Texts with class ids (0..K-1 in `label_names` order), added to the training split after it is read."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    description: str  # for the run's notes, e.g. "pseudo-labelled target texts"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    predict_example: str = '"your text here"'  # arguments of `nlp-transfer predict` for this task


@dataclass
class PreparedRun:
    """Everything training needs, checked and built; nothing written yet."""

    loaded: LoadedRecipe
    task: Task
    model_asset: Asset
    tokenizer: PreTrainedTokenizerBase
    data: LoadedData
    prepared: PreparedTask
    method: Method
    model: nn.Module
    notes: list[str]


def run(loaded: LoadedRecipe, options: RunOptions) -> RunResult:
    recipe = loaded.recipe
    distributed.setup()  # under accelerate launch / torchrun: join the other processes first
    if options.resume:
        run_dir = distributed.agree(resume_target(loaded, options.output_dir))
        if distributed.is_main():
            check_resumable(run_dir, loaded, options.force)  # before minutes of preparation
    else:
        run_dir = options.output_dir or (Path(recipe.output.dir) if recipe.output.dir else None)
        run_dir = distributed.agree(run_dir or default_run_dir(recipe.output.root, loaded.name))
        if distributed.is_main():
            check_run_target(run_dir, options.overwrite)  # refuse early, before minutes of preparation
    with distributed.main_first():  # the main process fills the tokenization cache; the others read it
        setup = prepare_run(loaded, options)
    if distributed.is_main():  # a full disk or a read-only folder, found before training rather than after
        check_room(run_dir, bytes_needed(setup.model, saves_trainable_only=hasattr(setup.model, "peft_config")))
    if not distributed.is_main():
        opened = worker_folder(run_dir)
    elif options.resume:
        opened = reopen_run_folder(run_dir)
    else:
        opened = open_run_folder(run_dir, options.overwrite)
    with opened as folder, _logging_to(run_dir / "run.log", enabled=folder.writer):
        if options.resume:
            log.info("resuming %s", run_dir)
        if not options.resume or options.force:  # --force: the run goes on with the new recipe; record it
            folder.write_text(RECIPE_FILE, loaded.to_yaml())
        if not options.resume:
            record = environment_record(recipe.train.seed, setup.model_asset, setup.data, setup.notes, loaded)
            folder.write_json("environment.json", record)
        for note in setup.notes:
            log.info("data: %s", note)
        return train_and_save(setup, folder, resume=options.resume)


def prepare_run(loaded: LoadedRecipe, options: RunOptions) -> PreparedRun:
    recipe = loaded.recipe
    training_arguments(recipe.train, Path("unused"))  # reject bad train.trainer settings before any work
    task = TASKS[recipe.task.name](recipe.task)
    method = METHODS[recipe.method.name](recipe.method)
    set_seed(recipe.train.seed)  # before the head is initialised

    base_dir = loaded.path.parent
    model_asset = resolve_model(recipe.model.name, recipe.model.revision, base_dir=base_dir)
    if model_asset.hub_id is None and recipe.card.base_model:  # the user says which hub model a local copy is
        model_asset = dataclasses.replace(model_asset, hub_id=recipe.card.base_model)
    tokenizer_asset = (
        resolve_model(recipe.model.tokenizer, recipe.model.revision, base_dir=base_dir)
        if recipe.model.tokenizer
        else model_asset
    )
    log.info("model %s -> %s (%s)", model_asset.reference, model_asset.location, model_asset.source)
    tokenizer = load_tokenizer(tokenizer_asset, recipe.model)

    data = load_data(
        recipe.data,
        label_column=str(getattr(recipe.task, "label", "label")),
        seed=recipe.train.seed,
        data_root=options.data_root or default_data_root(),
        base_dir=base_dir,
    )
    if options.extra_train is not None:
        add_rows(data, options.extra_train, recipe.task)
    prepared = task.prepare(data, tokenizer, pad_to_max_length=recipe.train.padding == "max_length")

    pretrained = load_model(task.auto_model_class, model_asset, recipe.model, tokenizer, **prepared.model_kwargs)
    model = method.prepare(pretrained, task)
    return PreparedRun(
        loaded=loaded,
        task=task,
        model_asset=model_asset,
        tokenizer=tokenizer,
        data=data,
        prepared=prepared,
        method=method,
        model=model,
        notes=data.notes + prepared.notes,
    )


def add_rows(data: LoadedData, extra: ExtraRows, task: Any) -> None:
    """Append rows to data.train in its own label representation (int ids, or names), keeping only the text and
    label columns (the extra rows have no others)."""
    train = data.splits["train"].select_columns([task.text, task.label])
    int_labels = str(getattr(train.features[task.label], "dtype", "")).startswith("int")
    declared = task.labels is not None

    def value(label: int) -> Any:
        if declared:
            return label if int_labels else extra.label_names[label]
        return normalise_label(extra.label_names[label])

    rows = datasets.Dataset.from_dict(
        {task.text: extra.texts, task.label: [value(label) for label in extra.labels]}
    ).cast(train.features)
    data.splits["train"] = datasets.concatenate_datasets([train, rows])
    data.notes.append(f"train: + {len(rows)} {extra.description}")


def train_and_save(setup: PreparedRun, folder: RunFolder, resume: bool = False) -> RunResult:
    """Train the method's stages in order, evaluate the final model, save what the method says, mark complete.

    Resuming, a stage that finished before is not trained again (its record and weights are read back, see
    _finish_stage) and the stage that was cut short continues from its last good checkpoint."""
    recipe = setup.loaded.recipe
    context = StageContext(prepared=setup.prepared, tokenizer=setup.tokenizer, train=recipe.train)
    started = time.perf_counter()
    stages: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    planned = setup.method.stages(setup.model, context)
    for index, stage in enumerate(planned):
        log.info("stage %s", stage.name)
        stage_started = time.perf_counter()
        stage_dir = folder.path / "checkpoints" / stage.name
        inputs = stage.build()  # e.g. extracts probe features, or unfreezes the encoder after the probe stage
        trainer = build_trainer(inputs, setup.tokenizer, setup.prepared, folder.path, stage.name)
        finished = _finished_stage(stage_dir, setup.model) if resume else None
        if finished is not None:
            log.info("stage %s finished before the interruption: not trained again", stage.name)
            stages[stage.name] = finished["metrics"]
            history += finished["history"]
            continue
        start = _resume_point(stage_dir) if resume else None
        with interruption.training():
            train_output = trainer.train(resume_from_checkpoint=str(start) if start else None)
        if interruption.STOP.requested:
            raise interruption.RunInterrupted(_how_to_resume(setup, folder, trainer, stage.name))
        stages[stage.name] = {
            "train": {
                **train_output.metrics,
                **parameter_counts(setup.model),  # after build: a later stage may train more than the first
                **inputs.info,
                "stage_wall_seconds": round(time.perf_counter() - stage_started, 2),
            },
            "eval": trainer.evaluate(metric_key_prefix="eval"),  # the stage's best checkpoint, reloaded at its end
        }
        stage_history = [{"stage": stage.name, **entry} for entry in trainer.state.log_history]
        history += stage_history
        if index < len(planned) - 1 and folder.writer:  # a later stage may be interrupted: keep this one's result
            _finish_stage(stage_dir, setup.model, stages[stage.name], stage_history)
    last = stages[stage.name]
    metrics: dict[str, dict[str, Any]] = {
        "train": {
            **last["train"],
            "method": recipe.method.name,
            "train_wall_seconds": round(time.perf_counter() - started, 2),  # all stages, feature extraction included
        },
        "eval": last["eval"],
    }
    if "test" in inputs.splits:
        metrics["test"] = trainer.evaluate(inputs.splits["test"], metric_key_prefix="test")
    if len(stages) > 1:
        metrics["stages"] = stages

    if folder.writer:
        setup.method.save(
            setup.model,
            folder.path,
            tokenizer=setup.tokenizer,
            base_model=setup.model_asset.hub_id or setup.model_asset.location,
        )
    folder.write_json("trainer_state.json", {"log_history": history})
    folder.write_json("metrics.json", metrics)
    if folder.writer:
        folder.write_text(CARD_FILE, model_card(folder.path))  # from the files just written, as push renders it
    if folder.writer and not recipe.output.keep_checkpoints:
        shutil.rmtree(folder.path / "checkpoints", ignore_errors=True)
    folder.mark("complete")
    return RunResult(
        run_dir=folder.path, metrics=metrics, notes=setup.notes, predict_example=setup.task.predict_example
    )


STAGE_RECORD = "stage_finished.json"  # in checkpoints/<stage>: the stage's metrics and log, written after its weights
STAGE_WEIGHTS = "stage_finished.safetensors"  # the whole model as the stage left it (the next stage starts there)


def _finish_stage(stage_dir: Path, model: nn.Module, metrics: dict[str, Any], history: list[dict[str, Any]]) -> None:
    stage_dir.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_model(model, str(stage_dir / STAGE_WEIGHTS))
    RunFolder(stage_dir).write_json(STAGE_RECORD, {"metrics": metrics, "history": history})


def _finished_stage(stage_dir: Path, model: nn.Module) -> dict[str, Any] | None:
    """The record of a stage that finished before an interruption, with its weights loaded into `model`."""
    if not (stage_dir / STAGE_RECORD).is_file():
        return None
    safetensors.torch.load_model(model, str(stage_dir / STAGE_WEIGHTS))
    return dict(json.loads((stage_dir / STAGE_RECORD).read_text(encoding="utf-8")))


def _resume_point(stage_dir: Path) -> Path | None:
    """The stage's newest good checkpoint; None when it never saved one (the stage starts over)."""
    found = checkpoints.last_usable(stage_dir)
    for skipped in found.skipped:
        log.warning("resume: %s/%s; falling back to an older checkpoint", stage_dir.name, skipped)
    if found.checkpoint is None and found.skipped:
        raise UserError(
            f"--resume: no usable checkpoint in {stage_dir} ({'; '.join(found.skipped)}); "
            "start the run again with --overwrite"
        )
    log.info("resume: %s", f"from {found.checkpoint}" if found.checkpoint else f"{stage_dir.name} starts over")
    return found.checkpoint


def _how_to_resume(setup: PreparedRun, folder: RunFolder, trainer: Any, stage: str) -> str:
    saved = checkpoints.last_usable(folder.path / "checkpoints" / stage).checkpoint
    return (
        f"stopped at step {trainer.state.global_step} of stage {stage}; checkpoint saved: {saved}. "
        f"Resume with: nlp-transfer run {setup.loaded.path} --resume --output-dir {folder.path}"
    )


@contextmanager
def _logging_to(path: Path, enabled: bool) -> Iterator[None]:
    """Our log lines and transformers' warnings go to run.log in the run folder as well as the console."""
    if not enabled:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = (logging.getLogger("nlp_transfer"), transformers.logging.get_logger())
    for logger in loggers:
        logger.addHandler(handler)
    logging.getLogger("nlp_transfer").setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
