"""A recipe's train section as transformers.TrainingArguments: the typed fields, what nlp-transfer sets itself
(and why a train.trainer entry for it is refused), precision and compile, length-sorted sub-batches, and the
default logging interval."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.recipe import TrainSpec, lower_is_better
from nlp_transfer.train.acceleration import acceleration_arguments

TRAINING_ARGUMENT_FIELDS = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
# TrainingArguments fields that a differently named train field sets (the others share their name).
SET_BY_TRAIN_FIELD = {
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size",
    "warmup_steps": "warmup_ratio",
    "data_seed": "seed",
    "train_sampling_strategy": "group_by_length",
    "save_strategy": "eval_strategy",
    "save_steps": "eval_steps",
    "load_best_model_at_end": "eval_strategy",
    "metric_for_best_model": "metric_for_best",
    "greater_is_better": "metric_for_best",
    "bf16": "precision",
    "fp16": "precision",
    "torch_compile": "compile",
    "report_to": "report_to",
    "logging_steps": "logging_steps",
    "eval_strategy": "eval_strategy",
    "eval_steps": "eval_steps",
    "learning_rate": "learning_rate",
    "max_steps": "max_steps",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "weight_decay": "weight_decay",
    "seed": "seed",
}


def sub_batches(spec: TrainSpec, device_type: str) -> int:
    """Into how many length-sorted sub-batches each batch is cut (micro-batches under gradient accumulation, so the
    optimizer step still sees the whole random batch; sampling.SortedRandomBatches). Sub-batches of about 8 on a
    CPU, where a small matrix product costs little more per row than a large one, and of 32 or more on a GPU,
    where small ones leave it idle."""
    if not spec.group_by_length or spec.padding == "max_length" or spec.sub_batch_tokens is not None:
        return 1  # (a token budget cuts whole batches in TaskTrainer.training_step)
    smallest = 8 if device_type == "cpu" else 32
    return next(k for k in (4, 2, 1) if (spec.batch_size % k == 0 and spec.batch_size // k >= smallest) or k == 1)


# TrainingArguments fields nlp-transfer sets itself, and why (a train.trainer entry for them is refused with this).
SET_BY_NLP_TRANSFER = {
    "output_dir": "the run folder decides it; set output.dir instead",
    "train_sampling_strategy": "batches are length-grouped by nlp-transfer (train.group_by_length)",
    "save_total_limit": "checkpoints are rotated once sealed (see train.checkpoint_steps, output.keep_checkpoints)",
    "logging_first_step": "the first step is always logged, for the curves",
    "disable_tqdm": "progress bars show on a terminal and give way to plain lines elsewhere",
    "dataloader_pin_memory": "pinned when a GPU is there",
}
POINTS_PER_RUN = 25  # default logging: about this many training-loss points over the run, whatever its length


def training_arguments(
    spec: TrainSpec, output_dir: Path, split_batches: int = 1, total_steps: int | None = None
) -> TrainingArguments:
    """Typed recipe fields first; `train.trainer` adds any other TrainingArguments field (checked here).
    `split_batches` > 1 cuts each batch into that many micro-batches (sub_batches); `total_steps` (when known)
    scales the default logging interval to the run's length."""
    evaluating = spec.eval_strategy != "no"
    logging_steps = spec.logging_steps or max(1, round((total_steps or 50 * POINTS_PER_RUN) / POINTS_PER_RUN))
    typed: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_train_epochs": spec.epochs,
        "max_steps": spec.max_steps if spec.max_steps is not None else -1,
        "learning_rate": spec.learning_rate,
        "per_device_train_batch_size": spec.batch_size // split_batches,
        "per_device_eval_batch_size": spec.eval_batch_size or 2 * spec.batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps * split_batches,
        "weight_decay": spec.weight_decay,
        "warmup_steps": spec.warmup_ratio,  # a float in [0, 1) is a fraction of all steps in transformers 5
        "seed": spec.seed,
        "data_seed": spec.seed,
        # Length grouping is ours (TaskTrainer below); the Trainer's own sampler stays plain random.
        "train_sampling_strategy": "random",
        "eval_strategy": spec.eval_strategy,
        "eval_steps": spec.eval_steps,
        "save_strategy": spec.eval_strategy,  # checkpoints where evaluations are, so the best one can be kept
        "save_steps": spec.eval_steps or 500,  # (500: the Trainer's default, unused unless saving by steps)
        "save_total_limit": None,  # TaskTrainer rotates, after sealing (checkpoints.py)
        "load_best_model_at_end": evaluating,
        "metric_for_best_model": spec.metric_for_best if evaluating else None,
        "greater_is_better": not lower_is_better(str(spec.metric_for_best)),
        "logging_steps": logging_steps,
        "logging_first_step": True,
        # The trackers are built by build_trainer (so that their files go under the run folder); TensorBoard's
        # callback is given its writer there.
        "report_to": [name for name in spec.report_to if name != "tensorboard"] or "none",
        "disable_tqdm": not sys.stderr.isatty(),  # bars on a terminal; plain periodic lines elsewhere (callbacks)
        "dataloader_pin_memory": torch.cuda.is_available(),
    }
    for key in spec.trainer:
        if key in SET_BY_NLP_TRANSFER:
            raise UserError(f"train.trainer.{key}: {SET_BY_NLP_TRANSFER[key]}")
        if key in SET_BY_TRAIN_FIELD:
            field = SET_BY_TRAIN_FIELD[key]
            raise UserError(f"train.trainer.{key}: set by train.{field}; set train.{field} instead")
        if key in typed:
            raise UserError(f"train.trainer.{key}: this is set by a train field; set it there (see nlp-transfer show)")
        if key in TrainSpec.model_fields:
            raise UserError(f"train.trainer.{key}: '{key}' is a train field; set train.{key} instead")
        if key not in TRAINING_ARGUMENT_FIELDS:
            # Suggest typed train fields first: a near-miss of warmup_ratio should point at train.warmup_ratio.
            hint = did_you_mean(key, TrainSpec.model_fields).replace("'", "'train.", 1) or did_you_mean(
                key, TRAINING_ARGUMENT_FIELDS - set(typed)
            )
            raise UserError(
                f"train.trainer.{key}: not a TrainingArguments field{hint}; "
                "see the transformers TrainingArguments documentation"
            )
    accelerated = acceleration_arguments(spec)  # precision and compile, checked against this machine
    try:
        extra = {key: value for key, value in accelerated.items() if key not in spec.trainer}
        return TrainingArguments(**typed, **spec.trainer, **extra)
    except (ValueError, TypeError) as err:
        raise UserError(f"train: TrainingArguments rejected the settings ({str(err).splitlines()[0]})") from err


def total_steps(spec: TrainSpec, train_rows: int) -> int:
    """Optimizer steps the phase will take (one process's view; enough to scale the logging interval)."""
    if spec.max_steps is not None:
        return spec.max_steps
    per_epoch = math.ceil(train_rows / (spec.batch_size * spec.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * spec.epochs))
