"""One run, top to bottom: recipe -> assets -> data -> tokenized data -> model -> method -> Trainer -> evaluation
-> run folder. No branching on task or method names: the TASKS and METHODS tables decide.

Everything that can fail on bad input (assets, data, labels, tokenization, model, TrainingArguments) happens in
prepare_run(), before the run folder exists, so a typo never leaves a folder behind.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import transformers
from torch import nn
from transformers import PreTrainedTokenizerBase, set_seed

from nlp_transfer.assets import Asset, default_data_root, resolve_model
from nlp_transfer.cards import model_card
from nlp_transfer.data import LoadedData, load_data
from nlp_transfer.methods import METHODS, parameter_counts
from nlp_transfer.models import load_model, load_tokenizer
from nlp_transfer.recipe import LoadedRecipe
from nlp_transfer.record import environment_record
from nlp_transfer.runfolder import RunFolder, check_run_target, default_run_dir, open_run_folder
from nlp_transfer.tasks import TASKS, PreparedTask, Task
from nlp_transfer.training import build_trainer, training_arguments

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    output_dir: Path | None = None  # overrides output.dir
    overwrite: bool = False
    data_root: Path | None = None  # overrides $NLP_TRANSFER_DATA and ../shared/data


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class PreparedRun:
    """Everything training needs, checked and built; nothing written yet."""

    loaded: LoadedRecipe
    task: Task
    model_asset: Asset
    tokenizer: PreTrainedTokenizerBase
    data: LoadedData
    prepared: PreparedTask
    model: nn.Module
    parameters: dict[str, int]
    notes: list[str]


def run(loaded: LoadedRecipe, options: RunOptions) -> RunResult:
    recipe = loaded.recipe
    run_dir = options.output_dir or (Path(recipe.output.dir) if recipe.output.dir else None)
    run_dir = run_dir or default_run_dir(recipe.output.root, loaded.name)
    check_run_target(run_dir, options.overwrite)  # refuse early, before minutes of preparation
    setup = prepare_run(loaded, options)
    with open_run_folder(run_dir, options.overwrite) as folder, _logging_to(run_dir / "run.log"):
        folder.write_text("recipe.resolved.yaml", loaded.to_yaml())
        folder.write_json("environment.json", environment_record(recipe.train.seed, setup.model_asset, setup.data))
        for note in setup.notes:
            log.info("data: %s", note)
        return train_and_save(setup, folder)


def prepare_run(loaded: LoadedRecipe, options: RunOptions) -> PreparedRun:
    recipe = loaded.recipe
    training_arguments(recipe.train, Path("unused"))  # reject bad train.trainer settings before any work
    task = TASKS[recipe.task.name](recipe.task)
    method = METHODS[recipe.method.name](recipe.method)
    set_seed(recipe.train.seed)  # before the head is initialised

    base_dir = loaded.path.parent
    model_asset = resolve_model(recipe.model.name, recipe.model.revision, base_dir=base_dir)
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
        model=model,
        parameters=parameter_counts(model),
        notes=data.notes + prepared.notes,
    )


def train_and_save(setup: PreparedRun, folder: RunFolder) -> RunResult:
    recipe = setup.loaded.recipe
    trainer = build_trainer(setup.model, setup.tokenizer, setup.prepared, recipe.train, folder.path)
    started = time.perf_counter()
    train_output = trainer.train()
    metrics: dict[str, dict[str, Any]] = {
        "train": {
            **train_output.metrics,
            **setup.parameters,
            "method": recipe.method.name,
            "train_wall_seconds": round(time.perf_counter() - started, 2),
        },
        "eval": trainer.evaluate(metric_key_prefix="eval"),  # the best checkpoint, reloaded at the end
    }
    if "test" in setup.prepared.splits:
        metrics["test"] = trainer.evaluate(setup.prepared.splits["test"], metric_key_prefix="test")

    trainer.save_model(str(folder.path))  # model + tokenizer, loadable with plain from_pretrained
    # The Trainer also pickles its arguments; the run records them as YAML instead, and we ship no pickles.
    (folder.path / "training_args.bin").unlink(missing_ok=True)
    folder.write_json("trainer_state.json", {"log_history": trainer.state.log_history})
    folder.write_json("metrics.json", metrics)
    folder.write_text("README.md", _card(setup, metrics))
    if not recipe.output.keep_checkpoints:
        shutil.rmtree(folder.path / "checkpoints", ignore_errors=True)
    folder.mark("complete")
    return RunResult(run_dir=folder.path, metrics=metrics, notes=setup.notes)


def _card(setup: PreparedRun, metrics: dict[str, dict[str, Any]]) -> str:
    recipe = setup.loaded.recipe
    return model_card(
        recipe=recipe.model_dump(mode="json"),
        base_model=setup.model_asset.location,
        base_model_hub_id=setup.model_asset.hub_id,
        pipeline_tag=setup.task.pipeline_tag,
        label_names=setup.prepared.label_names,
        headline_metrics=recipe.task.metric_names,
        metrics=metrics,
        parameters=setup.parameters,
        data_notes=setup.notes,
        data_sources=setup.data.sources,
    )


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """Our log lines and transformers' warnings go to run.log in the run folder as well as the console."""
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
