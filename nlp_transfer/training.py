"""Build TrainingArguments and the Trainer from a recipe. Plain transformers.Trainer, so `accelerate launch` works."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
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

from nlp_transfer import checkpoints
from nlp_transfer.errors import UserError, did_you_mean
from nlp_transfer.interruption import STOP
from nlp_transfer.methods import StageInputs
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.sampling import ShuffledLengthBuckets
from nlp_transfer.tasks.base import PreparedTask

logger = logging.getLogger(__name__)

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
        "save_total_limit": None,  # TaskTrainer rotates, after sealing (checkpoints.py)
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


class TrainingDiverged(UserError):
    """A NaN or infinite loss: training on would only spread it through the weights."""


class SaveEvery(TrainerCallback):
    """A resumable checkpoint every `steps` optimizer steps, besides those the evaluations save."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.steps == 0:
            control.should_save = True


class StopOnRequest(TrainerCallback):
    """Ctrl-C or SIGTERM during training (interruption.py): save a checkpoint after this step, then stop."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if STOP.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Stopping mid-epoch ends the epoch: its evaluation would score a part-trained model and could make it the
        # "best" checkpoint, which a resumed run would then load at its end. The step's checkpoint is saved already.
        if STOP.requested:
            control.should_evaluate = False
            control.should_save = False


class TaskTrainer(Trainer):
    """The Trainer, with these additions:

    - batches of similar length in shuffled order when train.group_by_length is on. With dynamic padding each batch
      is padded only to its own longest example, so grouping by length removes most padding; see sampling.py for why
      we do not use the Trainer's own length-grouped sampler.
    - metrics computed batch by batch when the task asks (batch_metrics_for): every evaluation gets a fresh metric
      for the split it evaluates, and no logits accumulate.
    - checkpoints sealed once complete, and rotated only then (checkpoints.py): a killed save never costs the last
      good checkpoint.
    - a NaN or infinite loss stops training (TrainingDiverged) before the optimizer step spreads it, or, with
      train.skip_nonfinite_batches, that batch contributes no gradient (up to that many times).
    """

    def __init__(
        self,
        *args: Any,
        group_by_length: bool,
        batch_metrics_for: Callable[[Any], Callable[..., dict[str, float]]] | None = None,
        skip_nonfinite_batches: int = 0,
        stage: str = "train",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length
        self.batch_metrics_for = batch_metrics_for
        self.args.batch_eval_metrics = batch_metrics_for is not None
        self.skip_nonfinite_batches = skip_nonfinite_batches
        self.skipped_batches: list[int] = []  # optimizer steps whose batch had a non-finite loss
        self.stage = stage

    def compute_loss(
        self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        found: Any = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss: torch.Tensor = found[0] if return_outputs else found
        if torch.isfinite(loss.detach()).all():
            return found
        step = self.state.global_step + 1
        if len(self.skipped_batches) >= self.skip_nonfinite_batches:
            last = checkpoints.last_usable(Path(str(self.args.output_dir))).checkpoint
            sys.stderr.write("\n")  # the progress bar stops mid-line
            raise TrainingDiverged(
                f"training diverged: the loss is {loss.item()} at step {step} of stage {self.stage}"
                + (f" ({len(self.skipped_batches)} bad batches skipped before)" if self.skipped_batches else "")
                + f"; last good checkpoint: {last or 'none yet'}. Lower train.learning_rate (or raise "
                "train.warmup_ratio), or set train.skip_nonfinite_batches to skip a few bad batches"
            )
        self.skipped_batches.append(step)
        logger.warning("stage %s step %d: loss is %s; batch skipped (no gradient)", self.stage, step, loss.item())
        nothing = loss.new_zeros((), requires_grad=True)  # backward gives the model's weights no gradient at all
        return (nothing, found[1]) if return_outputs else nothing

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        if not self.args.should_save:
            return
        stage_dir = Path(self._get_output_dir(trial=trial))
        checkpoints.seal(stage_dir / f"checkpoint-{self.state.global_step}")
        best = self.state.best_model_checkpoint
        checkpoints.rotate(stage_dir, protect=Path(best) if best else None)

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
) -> TaskTrainer:
    """A Trainer for one stage of a method; its checkpoints go to checkpoints/<stage>, its log lines name it."""
    spec = inputs.train
    callbacks: list[TrainerCallback] = [JsonlLogger(run_dir / "trainer_log.jsonl", stage), StopOnRequest()]
    if spec.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=spec.early_stopping_patience))
    if spec.checkpoint_steps is not None:
        callbacks.append(SaveEvery(spec.checkpoint_steps))
    return TaskTrainer(
        group_by_length=spec.group_by_length,
        batch_metrics_for=prepared.batch_metrics_for,
        skip_nonfinite_batches=spec.skip_nonfinite_batches,
        stage=stage,
        model=inputs.model,
        args=training_arguments(spec, run_dir / "checkpoints" / stage),
        train_dataset=inputs.splits["train"],
        eval_dataset=inputs.splits["eval"],
        processing_class=tokenizer,
        data_collator=inputs.collator or DataCollatorWithPadding(tokenizer),
        compute_metrics=prepared.compute_metrics,
        callbacks=callbacks,
    )
