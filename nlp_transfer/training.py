"""Build TrainingArguments and the Trainer from a recipe. Plain transformers.Trainer, so `accelerate launch` works."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from nlp_transfer.errors import UserError, did_you_mean
from nlp_transfer.methods import StageInputs
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.sampling import ShuffledLengthBuckets
from nlp_transfer.tasks.base import PreparedTask

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
    "load_best_model_at_end": "eval_strategy",
    "metric_for_best_model": "metric_for_best",
    "greater_is_better": "metric_for_best",
}


def training_arguments(spec: TrainSpec, output_dir: Path) -> TrainingArguments:
    """Typed recipe fields first; `train.trainer` adds any other TrainingArguments field (checked here)."""
    evaluating = spec.eval_strategy != "no"
    typed: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_train_epochs": spec.epochs,
        "max_steps": spec.max_steps if spec.max_steps is not None else -1,
        "learning_rate": spec.learning_rate,
        "per_device_train_batch_size": spec.batch_size,
        "per_device_eval_batch_size": spec.eval_batch_size or 2 * spec.batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "weight_decay": spec.weight_decay,
        "warmup_steps": spec.warmup_ratio,  # a float in [0, 1) is a fraction of all steps in transformers 5
        "seed": spec.seed,
        "data_seed": spec.seed,
        # Length grouping is ours (TaskTrainer below); the Trainer's own sampler stays plain random.
        "train_sampling_strategy": "random",
        "eval_strategy": spec.eval_strategy,
        "eval_steps": spec.eval_steps,
        "save_strategy": spec.eval_strategy,  # checkpoints where evaluations are, so the best one can be kept
        "save_total_limit": 1,  # the Trainer also keeps the best checkpoint when it is not the latest
        "load_best_model_at_end": evaluating,
        "metric_for_best_model": spec.metric_for_best if evaluating else None,
        "greater_is_better": spec.metric_for_best != "loss",
        "logging_steps": spec.logging_steps,
        "logging_first_step": True,
        "report_to": "none",
        "disable_tqdm": False,
        "dataloader_pin_memory": torch.cuda.is_available(),
    }
    for key in spec.trainer:
        if key in typed and key != "output_dir":
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
    if "output_dir" in spec.trainer:
        raise UserError("train.trainer.output_dir: the run folder decides it; set output.dir instead")
    try:
        return TrainingArguments(**typed, **spec.trainer)
    except (ValueError, TypeError) as err:
        raise UserError(f"train: TrainingArguments rejected the settings ({str(err).splitlines()[0]})") from err


class JsonlLogger(TrainerCallback):
    """Every Trainer log line (loss, learning rate, eval metrics) as one JSON object per line."""

    def __init__(self, path: Path, stage: str) -> None:
        self.path = path
        self.stage = stage

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(
                    json.dumps({"stage": self.stage, "step": state.global_step, "epoch": state.epoch, **logs}) + "\n"
                )


class TaskTrainer(Trainer):
    """The Trainer, with two additions:

    - batches of similar length in shuffled order when train.group_by_length is on. With dynamic padding each batch
      is padded only to its own longest example, so grouping by length removes most padding; see sampling.py for why
      we do not use the Trainer's own length-grouped sampler.
    - metrics computed batch by batch when the task asks (batch_metrics_for): every evaluation gets a fresh metric
      for the split it evaluates, and no logits accumulate.
    """

    def __init__(
        self,
        *args: Any,
        group_by_length: bool,
        batch_metrics_for: Callable[[Any], Callable[..., dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length
        self.batch_metrics_for = batch_metrics_for
        self.args.batch_eval_metrics = batch_metrics_for is not None

    def evaluate(self, eval_dataset: Any = None, *args: Any, **kwargs: Any) -> dict[str, float]:
        if self.batch_metrics_for is not None:
            dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
            self.compute_metrics = self.batch_metrics_for(dataset)
        return super().evaluate(eval_dataset, *args, **kwargs)

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if not self.group_by_length or "input_ids" not in getattr(dataset, "column_names", ()):
            return super()._get_train_sampler(train_dataset)
        return ShuffledLengthBuckets(
            lengths=[len(ids) for ids in dataset["input_ids"]],
            batch_size=self.args.train_batch_size * self.args.gradient_accumulation_steps,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )


def build_trainer(
    inputs: StageInputs, tokenizer: PreTrainedTokenizerBase, prepared: PreparedTask, run_dir: Path, stage: str
) -> Trainer:
    """A Trainer for one stage of a method; its checkpoints go to checkpoints/<stage>, its log lines name it."""
    spec = inputs.train
    callbacks: list[TrainerCallback] = [JsonlLogger(run_dir / "trainer_log.jsonl", stage)]
    if spec.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=spec.early_stopping_patience))
    return TaskTrainer(
        group_by_length=spec.group_by_length,
        batch_metrics_for=prepared.batch_metrics_for,
        model=inputs.model,
        args=training_arguments(spec, run_dir / "checkpoints" / stage),
        train_dataset=inputs.splits["train"],
        eval_dataset=inputs.splits["eval"],
        processing_class=tokenizer,
        data_collator=inputs.collator or DataCollatorWithPadding(tokenizer),
        compute_metrics=prepared.compute_metrics,
        callbacks=callbacks,
    )
