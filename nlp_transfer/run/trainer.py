"""Build TrainingArguments and the Trainer from a recipe. Plain transformers.Trainer, so `accelerate launch` works."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections.abc import Callable, Sequence
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

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.methods import PhaseInputs
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.run import checkpoints
from nlp_transfer.run.callbacks import JsonlLogger, SaveEvery, SealCheckpoints, StopOnRequest
from nlp_transfer.run.folder import CHECKPOINTS_DIR, TRAINER_LOG
from nlp_transfer.run.sampling import ShuffledLengthBuckets
from nlp_transfer.tasks.base import PreparedTask

logger = logging.getLogger(__name__)

# (model, inputs, return_outputs) -> loss, or (loss, outputs): what Trainer.compute_loss returns
LossFunction = Callable[[Any, dict[str, Any], bool], Any]

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
        "save_steps": spec.eval_steps or 500,  # (500: the Trainer's default, unused unless saving by steps)
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


class TrainingDiverged(UserError):
    """A NaN or infinite loss: training on would only spread it through the weights."""


class TaskTrainer(Trainer):
    """The Trainer, with these additions:

    - batches of similar length in shuffled order when train.group_by_length is on. With dynamic padding each batch
      is padded only to its own longest example, so grouping by length removes most padding; see sampling.py for why
      we do not use the Trainer's own length-grouped sampler.
    - metrics computed batch by batch when the task asks (batch_metrics_for): every evaluation gets a fresh metric
      for the split it evaluates, and no logits accumulate.
    - a NaN or infinite loss stops training (TrainingDiverged) before the optimizer step spreads it, or, with
      train.skip_nonfinite_batches, that batch contributes no gradient (up to that many times); decided by all
      processes together.
    - `loss`: a loss of its own instead of the model's (continued pre-training scores only the masked positions).
    Sealing checkpoints and stopping on request are callbacks (callbacks.py).
    """

    def __init__(
        self,
        *args: Any,
        group_by_length: bool,
        batch_metrics_for: Callable[[Any], Callable[..., dict[str, float]]] | None = None,
        skip_nonfinite_batches: int = 0,
        phase: str = "train",
        loss: LossFunction | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_by_length = group_by_length
        self.batch_metrics_for = batch_metrics_for
        self.args.batch_eval_metrics = batch_metrics_for is not None
        self.skip_nonfinite_batches = skip_nonfinite_batches
        self.skipped_batches: list[int] = []  # optimizer steps whose batch had a non-finite loss
        self.phase = phase
        self.loss = loss

    def compute_loss(
        self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        found: Any = (
            super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if self.loss is None
            else self.loss(model, inputs, return_outputs)
        )
        loss: torch.Tensor = found[0] if return_outputs else found
        if not self._nonfinite_anywhere(loss):
            return found
        step = self.state.global_step + 1
        if len(self.skipped_batches) >= self.skip_nonfinite_batches:
            last = checkpoints.last_usable(Path(str(self.args.output_dir))).checkpoint
            sys.stderr.write("\n")  # the progress bar stops mid-line
            value = loss.item()
            where = f"is {value}" if not math.isfinite(value) else "is not finite on another process"
            raise TrainingDiverged(
                f"training diverged: the loss {where} at step {step} of phase {self.phase}"
                + (f" ({len(self.skipped_batches)} bad batches skipped before)" if self.skipped_batches else "")
                + f"; last good checkpoint: {last or 'none yet'}. Lower train.learning_rate (or raise "
                "train.warmup_ratio), or set train.skip_nonfinite_batches to skip a few bad batches"
            )
        self.skipped_batches.append(step)
        value = loss.item()
        where = f"is {value}" if not math.isfinite(value) else "is not finite on another process"
        logger.warning("phase %s step %d: loss %s; batch skipped (no gradient)", self.phase, step, where)
        # Zero, but connected to every trainable weight: backward gives each a gradient of exactly 0 (the batch
        # contributes nothing), and under DDP every weight's all-reduce still fires, so no process waits forever.
        nothing = sum((p.sum() * 0.0 for p in model.parameters() if p.requires_grad), loss.new_zeros(()))
        return (nothing, found[1]) if return_outputs else nothing

    def _nonfinite_anywhere(self, loss: torch.Tensor) -> bool:
        """Whether the loss is NaN/inf on this process or, in a multi-process run, on any process: every process
        must then skip the batch or stop together (one alone would leave the others waiting in an all-reduce)."""
        bad = torch.tensor(0.0 if torch.isfinite(loss.detach()).all() else 1.0, device=loss.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        return bool(bad.item() > 0)

    def evaluate(self, eval_dataset: Any = None, *args: Any, **kwargs: Any) -> dict[str, float]:
        if self.batch_metrics_for is not None:
            dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
            self.compute_metrics = self.batch_metrics_for(dataset)
        return super().evaluate(eval_dataset, *args, **kwargs)

    # The one private Trainer hook we override: the Trainer offers no public way to supply a sampler
    # (TrainingArguments.train_sampling_strategy names only its own). tests/unit/test_sampling.py fails loudly if a
    # transformers release stops calling it.
    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if "input_ids" not in getattr(dataset, "column_names", ()):
            return super()._get_train_sampler(train_dataset)  # cached probe features: the Trainer's own order
        # The order is a function of the seed and the epoch alone (not of the global random state, which loading a
        # model or an evaluation before training also draws from), so a resumed run sees the same batches.
        lengths = [len(ids) for ids in dataset["input_ids"]] if self.group_by_length else [0] * len(dataset)
        return ShuffledLengthBuckets(
            lengths=lengths,
            batch_size=self.args.train_batch_size * self.args.gradient_accumulation_steps,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )


def build_trainer(
    inputs: PhaseInputs,
    tokenizer: PreTrainedTokenizerBase,
    prepared: PreparedTask | None,
    run_dir: Path,
    phase: str,
    loss: LossFunction | None = None,
    extra_callbacks: Sequence[TrainerCallback] = (),
) -> TaskTrainer:
    """The Trainer for one phase of any run (a method's phase, or continued pre-training): its checkpoints go to
    checkpoints/<phase>, sealed; its log lines name the phase; a signal stops it cleanly with a checkpoint."""
    spec = inputs.train
    callbacks: list[TrainerCallback] = [JsonlLogger(run_dir / TRAINER_LOG, phase), SealCheckpoints()]
    callbacks += extra_callbacks  # the caller's own (a tune trial's pruning)
    if spec.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=spec.early_stopping_patience))
    if spec.checkpoint_steps is not None:
        callbacks.append(SaveEvery(spec.checkpoint_steps))
    trainer = TaskTrainer(
        group_by_length=spec.group_by_length,
        batch_metrics_for=prepared.batch_metrics_for if prepared is not None else None,
        skip_nonfinite_batches=spec.skip_nonfinite_batches,
        phase=phase,
        loss=loss,
        model=inputs.model,
        args=training_arguments(spec, run_dir / CHECKPOINTS_DIR / phase),
        train_dataset=inputs.splits["train"],
        eval_dataset=inputs.splits.get("eval"),
        processing_class=tokenizer,
        data_collator=inputs.collator or DataCollatorWithPadding(tokenizer),
        compute_metrics=prepared.compute_metrics if prepared is not None else None,
        callbacks=callbacks,
    )
    trainer.add_callback(StopOnRequest(trainer.accelerator))  # needs the Trainer's accelerator to agree on stopping
    return trainer


def stopped_on_request(trainer: Trainer) -> bool:
    """Whether the phase stopped because of a signal (on any process of the run)."""
    return any(isinstance(c, StopOnRequest) and c.stopped for c in trainer.callback_handler.callbacks)
