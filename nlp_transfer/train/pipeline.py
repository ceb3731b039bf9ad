"""One run, top to bottom: recipe -> assets -> data -> tokenized data -> model -> method -> Trainer -> evaluation
-> run folder. No branching on task or method names: the TASKS and METHODS tables decide.

Everything that can fail on bad input (assets, data, labels, tokenization, model, TrainingArguments) happens in
prepare_run(), before the run folder exists, so a typo never leaves a folder behind. The cheap checks come first: the
recipe against the model's config and module names (on a weightless skeleton) before the data is read, and the data
before the weights load. Training the method's phases and saving the result is phases.py.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import transformers
from torch import nn
from transformers import PreTrainedTokenizerBase, TrainerCallback, set_seed

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_folder
from nlp_transfer.core.hardware import Precision
from nlp_transfer.core.quiet import held_records
from nlp_transfer.data.assets import Asset, default_data_root, resolve_model
from nlp_transfer.data.augment import augment_training_split
from nlp_transfer.data.loading import LoadedData, load_data
from nlp_transfer.methods import METHODS, Method, check_serves
from nlp_transfer.methods.base import check_on_skeleton
from nlp_transfer.methods.pretrained import check_against_model, load_config, load_model, load_tokenizer, skeleton
from nlp_transfer.recipe import LoadedRecipe
from nlp_transfer.runfolder.folder import (
    ENVIRONMENT_FILE,
    RECIPE_FILE,
    RUN_LOG,
    TASK_FILE,
    check_run_target,
    default_run_dir,
    open_run_folder,
    reopen_run_folder,
    worker_folder,
)
from nlp_transfer.runfolder.record import environment_record
from nlp_transfer.tasks import TASKS, PreparedTask, Task
from nlp_transfer.tasks.extra_metrics import load_extra_metrics
from nlp_transfer.train.acceleration import training_precision
from nlp_transfer.train.arguments import training_arguments
from nlp_transfer.train.cell import clean_cell
from nlp_transfer.train.contextual import contextual_operation
from nlp_transfer.train.disk import bytes_needed, check_room
from nlp_transfer.train.phases import RunResult, train_and_save
from nlp_transfer.train.resume import check_resumable, resume_target
from nlp_transfer.train.sharding import check_sharding
from nlp_transfer.train.trackers import check_trackers

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    output_dir: Path | None = None  # overrides output.dir
    overwrite: bool = False
    data_root: Path | None = None  # overrides $NLP_TRANSFER_DATA and ../shared/data
    resume: bool = False  # continue an unfinished run folder from its last good checkpoint (resume.py)
    force: bool = False  # resume even though the recipe changed
    callbacks: list[TrainerCallback] = dataclasses.field(default_factory=list)  # join every phase's Trainer (tune)


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
    precision: Precision  # train.precision as resolved on this machine (recorded in metrics and environment)


def _tokenizer_options(task: Task) -> dict[str, Any]:
    """What a task asks of the tokenizer: the side it pads on (QA) and its own settings (token classification's
    add_prefix_space for pre-split words)."""
    padding_side = getattr(task, "padding_side", None)
    return {
        **({"padding_side": padding_side} if padding_side is not None else {}),
        **getattr(task, "tokenizer_options", {}),
    }


def run(loaded: LoadedRecipe, options: RunOptions) -> RunResult:
    with clean_cell():  # studies run many in one process: each starts clean and gives back what it took
        return _run(loaded, options)


def _run(loaded: LoadedRecipe, options: RunOptions) -> RunResult:
    recipe = loaded.recipe
    quiet_library_bars()
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
            check_output_folder(run_dir, "output.dir (or --output-dir)")
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
    with opened as folder, _logging_to(run_dir / RUN_LOG, enabled=folder.writer):
        if options.resume:
            log.info("resuming %s", run_dir)
        if not options.resume or options.force:  # --force: the run goes on with the new recipe; record it
            folder.write_text(RECIPE_FILE, loaded.to_yaml())
        if not options.resume:
            record = environment_record(recipe.train.seed, setup.model_asset, setup.data, setup.notes, loaded)
            record["precision"] = setup.precision.record()
            record["pad_to_multiple_of"] = recipe.train.length_multiple(setup.precision)  # None: not rounded
            folder.write_json(ENVIRONMENT_FILE, record)
        folder.write_json(TASK_FILE, {"name": recipe.task.name, **setup.prepared.resolved})
        for note in setup.notes:
            log.info("data: %s", note)
        return train_and_save(setup, folder, resume=options.resume, callbacks=options.callbacks)


def prepare_run(loaded: LoadedRecipe, options: RunOptions) -> PreparedRun:
    recipe = loaded.recipe
    training_arguments(recipe.train, Path("unused"))  # reject bad train.trainer settings before any work
    check_trackers(recipe.train.report_to)  # a tracker that is not installed, before the run folder exists
    check_serves(METHODS[recipe.method.name], recipe.method.name, recipe.task.name)
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
    tokenizer = load_tokenizer(tokenizer_asset, recipe.model, **_tokenizer_options(task))
    # The recipe against the model before the data is read and the weights load: its config and a weightless copy.
    config = load_config(model_asset, recipe.model, tokenizer)
    check_against_model(model_asset, config, tokenizer, getattr(recipe.task, "max_length", None), "task.max_length")
    check_on_skeleton(method, skeleton(task.auto_model_class, model_asset, config), task)

    data = load_data(
        recipe.data,
        label_column=str(getattr(recipe.task, "label", "label")),
        seed=recipe.train.seed,
        data_root=options.data_root or default_data_root(),
        base_dir=base_dir,
    )
    if recipe.augment is not None:
        _augment(loaded, data)
    prepared = task.prepare(data, tokenizer, pad_to_max_length=recipe.train.padding == "max_length")
    prepared.extra_metrics.extend(load_extra_metrics(recipe.train.extra_metrics, base_dir))

    # The task's config attributes (the regression scale, which predict undoes) are part of the config it loads
    # with, not set on the model afterwards.
    pretrained = load_model(
        task.auto_model_class,
        model_asset,
        recipe.model,
        tokenizer,
        attributes=prepared.config_attributes,
        **prepared.model_kwargs,
    )
    model = method.prepare(pretrained, task)
    # FSDP / ZeRO-3 launches gather plain, single-phase models only
    check_sharding(model, recipe.method.name, phased=bool(getattr(method, "phased", False)))
    check_data = getattr(method, "check_data", None)  # a method that needs more of the data (contrastive pairs)
    if check_data is not None:
        check_data(prepared)
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
        precision=training_precision(recipe.train),
    )


def _augment(loaded: LoadedRecipe, data: LoadedData) -> None:
    """recipe.augment: altered copies of the training rows, in the task's text columns (classification-style tasks;
    QA's answers are character offsets into the context, which word edits would break)."""
    recipe, spec = loaded.recipe, loaded.recipe.augment
    assert spec is not None
    columns = [c for c in (getattr(recipe.task, "text", None), getattr(recipe.task, "text_pair", None)) if c]
    if not columns:
        raise UserError(f"augment: the {recipe.task.name} task has no text column to alter; remove the augment section")
    contextual = None
    if "contextual" in spec.operations:
        contextual = contextual_operation(spec.mlm_model or recipe.model.name, loaded.path.parent)
    augment_training_split(data, spec, columns, recipe.train.seed, contextual)


def quiet_library_bars() -> None:
    """transformers' bars for loading and writing weight shards say nothing about a model this size; the data
    libraries' bars (reading, tokenizing) help on a terminal and only fill a log file elsewhere."""
    transformers.utils.logging.disable_progress_bar()
    if not sys.stderr.isatty():
        datasets.disable_progress_bars()
        huggingface_hub.utils.disable_progress_bars()


@contextmanager
def _logging_to(path: Path, enabled: bool) -> Iterator[None]:
    """Our log lines and transformers' warnings go to run.log in the run folder as well as the console."""
    if not enabled:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for record in held_records():  # what the libraries said while the model and data loaded (core.quiet)
        handler.handle(record)
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
