"""The Trainer of every phase: checkpoints sealed, losses of the task, length-sorted sub-batches, collective stop and
NaN decisions, progress and trackers. Plain transformers.Trainer, so `accelerate launch` works; the arguments are
built in arguments.py."""

from __future__ import annotations

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
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
)

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import training_device
from nlp_transfer.methods import PhaseInputs
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.runfolder.folder import CHECKPOINTS_DIR, TRAINER_LOG
from nlp_transfer.tasks.base import LossOnLogits, PreparedTask
from nlp_transfer.train import checkpoints
from nlp_transfer.train.acceleration import training_precision
from nlp_transfer.train.arguments import sub_batches, total_steps, training_arguments
from nlp_transfer.train.callbacks import (
    JsonlLogger,
    PlainProgress,
    ProgressBar,
    QuietProgress,
    SaveEvery,
    SealCheckpoints,
    StopOnRequest,
    finish_seals,
)
from nlp_transfer.train.sampling import SortedRandomBatches, token_budget_sub_batches
from nlp_transfer.train.trackers import tracker_callbacks

logger = logging.getLogger(__name__)

# (model, inputs, return_outputs) -> loss, or (loss, outputs): what Trainer.compute_loss returns
LossFunction = Callable[[Any, dict[str, Any], bool], Any]


class TrainingDiverged(UserError):
    """A NaN or infinite loss: training on would only spread it through the weights."""


class TaskTrainer(Trainer):
    """The Trainer, with these additions:

    - batches of similar length in shuffled order when train.group_by_length is on. With dynamic padding each batch
      is padded only to its own longest example, so grouping by length removes most padding; see sampling.py for why
      we do not use the Trainer's own length-grouped sampler.
    - metrics computed batch by batch when the task asks (batch_metrics_for): every evaluation gets a fresh metric
      for the split it evaluates, and no logits accumulate.
    - a NaN or infinite training loss stops training (TrainingDiverged) before the optimizer step spreads it, or, with
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
        sub_batch_tokens: int | None = None,
        length_multiple: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.sub_batch_tokens = sub_batch_tokens
        self.length_multiple = length_multiple
        self.group_by_length = group_by_length
        self.batch_metrics_for = batch_metrics_for
        self.args.batch_eval_metrics = batch_metrics_for is not None
        self.skip_nonfinite_batches = skip_nonfinite_batches
        self.skipped_batches: list[int] = []  # optimizer steps whose batch had a non-finite loss
        self.phase = phase
        self.loss = loss
        # loss_is_scaled_for_ga stays the Trainer's own rule (scaled when the step's item count was passed): our loss
        # is scaled exactly then, by _example_weighted; without that count it is a micro-batch mean, which the
        # Trainer divides by the accumulation steps. Forcing False divided the weighted loss a second time, so
        # the logged loss and the gradient (clipping too) were k times too small under k sub-batches.

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        """With train.sub_batch_tokens: the batch cut into sub-batches of at most that many padded tokens
        (sampling.token_budget_sub_batches), each a forward and backward of its own. compute_loss weights each
        sub-batch's mean by its share of the step's items, so the gradient is the whole batch's. Without the step's
        item count (a model that takes no loss kwargs) that weighting is impossible, and the batch trains whole.
        Under bf16/fp16 autocast the sub-batches share one cast of the weights (one_autocast_cache)."""
        budget = self.sub_batch_tokens
        if budget is None or num_items_in_batch is None or "attention_mask" not in inputs:
            return super().training_step(model, inputs, num_items_in_batch)
        step = super().training_step  # (zero-argument super() does not work inside a comprehension)
        with one_autocast_cache(self.accelerator.device.type):
            return torch.stack(
                [
                    step(model, part, num_items_in_batch)
                    for part in token_budget_sub_batches(inputs, budget, self.length_multiple)
                ]
            ).sum()

    def compute_loss(
        self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        labels = inputs.get("labels")
        # A mean loss over labelled items (class ids; label cells and targets under a task's own loss; masked tokens
        # of continued pre-training): each micro-batch's mean weighted by its share of the step's items, as
        # _example_weighted explains.
        per_example = (
            labels is not None and num_items_in_batch is not None and (self.loss is not None or labels.dim() == 1)
        )
        if per_example:
            # Items as the Trainer counts them (labels other than -100): examples, label cells, or masked tokens (MLM).
            counted = labels.ne(-100).sum()
            found: Any = self._example_weighted(model, inputs, return_outputs, counted / num_items_in_batch)
        elif self.loss is not None:
            found = self.loss(model, inputs, return_outputs)  # a micro-batch mean: the Trainer scales it
        else:
            found = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss: torch.Tensor = found[0] if return_outputs else found
        # The guard is for training steps (model.train(), set by training_step) only: an evaluation changes no
        # weight, so its non-finite loss is reported with its metrics (evaluate), never "training diverged" and
        # never a skipped batch.
        if not model.training or not self._nonfinite_anywhere(loss):
            return found
        step = self.state.global_step + 1
        if len(self.skipped_batches) >= self.skip_nonfinite_batches:
            finish_seals(self.callback_handler.callbacks)  # a seal still being hashed counts
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

    def _example_weighted(self, model: Any, inputs: Any, return_outputs: bool, share: Any) -> Any:
        """Labels per example: the task's (or the model's) mean loss over this micro-batch, weighted by the
        micro-batch's share of the optimizer step's examples, so that the gradient accumulated over the step's
        micro-batches (sub_batches, gradient_accumulation_steps) is that of the whole batch's mean. transformers
        passes the step's example count to any model whose forward takes **kwargs and then counts the loss as
        normalised by it, but sequence-classification heads ignore it and average their own micro-batch: without
        this weighting the gradient would be the sum of the micro-batch means, k times too large."""
        if self.loss is not None:
            found = self.loss(model, inputs, return_outputs)
        else:
            found = super().compute_loss(model, inputs, return_outputs, None)
        if self.args.average_tokens_across_devices:  # the count is over every process; DDP then averages them
            share = share * self.accelerator.num_processes
        return (found[0] * share, found[1]) if return_outputs else found * share

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
        metrics: dict[str, float] = super().evaluate(eval_dataset, *args, **kwargs)
        nonfinite = [f"{k} = {v}" for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if nonfinite:
            logger.warning(
                "phase %s step %d: evaluation metric not finite: %s (the model's outputs or the targets of the "
                "evaluated split hold NaN or infinity; the weights were not changed by it)",
                self.phase,
                self.state.global_step,
                ", ".join(nonfinite),
            )
        return metrics

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
        return SortedRandomBatches(
            lengths=lengths,
            batch_size=self.args.train_batch_size * self.args.gradient_accumulation_steps,  # one optimizer step
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )


def one_autocast_cache(device_type: str) -> Any:
    """An autocast region that enables nothing, around a step's sub-batches. Autocast keeps its low-precision copies
    of the weights until its outermost region ends; each forward autocasts itself (accelerate wraps it) and would
    cast every weight again, sub-batch after sub-batch. Inside this region the copies last the whole step: each
    weight is cast once a step (the weights do not change before the optimizer step, so the result is the same to
    the bit), and each backward still runs with autocast off, as it does without it."""
    return torch.autocast(device_type=device_type, enabled=False)


def loss_on_logits(loss: LossOnLogits) -> LossFunction:
    """A task's loss on logits (class weights, multi-label, regression) as the Trainer's compute_loss: the model runs
    without labels (so it computes no loss of its own) and the task scores its logits."""

    def compute(model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        value = loss(outputs["logits"], labels)
        return (value, outputs) if return_outputs else value

    return compute


def length_multiple(spec: TrainSpec) -> int | None:
    """train.pad_to_multiple_of resolved in the precision this run trains in."""
    return spec.length_multiple(training_precision(spec))


def task_collator(prepared: PreparedTask | None, tokenizer: PreTrainedTokenizerBase, multiple: int | None) -> Any:
    """The task's collator (token classification pads labels per token), or token ids padded per batch; either
    rounds each batch's length up to a multiple of `multiple` tokens."""
    if prepared is not None and prepared.collator is not None:
        return prepared.collator(tokenizer, multiple)
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)


def build_trainer(
    inputs: PhaseInputs,
    tokenizer: PreTrainedTokenizerBase,
    prepared: PreparedTask | None,
    run_dir: Path,
    phase: str,
    loss: LossFunction | None = None,
    main_metric: str | None = None,
    extra_callbacks: Sequence[TrainerCallback] = (),
) -> TaskTrainer:
    """The Trainer for one phase of any run (a method's phase, or continued pre-training): its checkpoints go to
    checkpoints/<phase>, sealed; its log lines name the phase; a signal stops it cleanly with a checkpoint; the
    trackers the recipe names write under the run folder."""
    spec = inputs.train
    if loss is None and prepared is not None and prepared.loss is not None:
        loss = loss_on_logits(prepared.loss)
    callbacks: list[TrainerCallback] = [JsonlLogger(run_dir / TRAINER_LOG, phase), SealCheckpoints()]
    callbacks += extra_callbacks  # the caller's own (a tune trial's pruning)
    if spec.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=spec.early_stopping_patience))
    if spec.checkpoint_steps is not None:
        callbacks.append(SaveEvery(spec.checkpoint_steps))
    tokens = "input_ids" in getattr(inputs.splits["train"], "column_names", ())  # not cached probe features
    device = training_device(use_cpu=bool(spec.trainer.get("use_cpu", False)))
    split = sub_batches(spec, device.type) if tokens else 1
    multiple = length_multiple(spec)
    callbacks += tracker_callbacks(spec.report_to, run_dir, phase)
    args = training_arguments(
        spec, run_dir / CHECKPOINTS_DIR / phase, split, total_steps(spec, len(inputs.splits["train"]))
    )
    trainer = TaskTrainer(
        group_by_length=spec.group_by_length,
        batch_metrics_for=prepared.batch_metrics_for if prepared is not None else None,
        skip_nonfinite_batches=spec.skip_nonfinite_batches,
        phase=phase,
        loss=loss,
        sub_batch_tokens=spec.sub_batch_tokens if tokens else None,
        length_multiple=multiple,
        model=inputs.model,
        args=args,
        train_dataset=inputs.splits["train"],
        eval_dataset=inputs.splits.get("eval"),
        processing_class=tokenizer,
        data_collator=inputs.collator or task_collator(prepared, tokenizer, multiple),
        callbacks=callbacks,
    )
    trainer.add_callback(StopOnRequest(trainer.accelerator))  # needs the Trainer's accelerator to agree on stopping
    # The Trainer's own progress reporting prints a dict per log line; ours: a bar on a terminal, plain lines
    # elsewhere, and one compact line per evaluation either way.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not any(isinstance(callback, QuietProgress) for callback in extra_callbacks):
        trainer.add_callback(
            ProgressBar(phase, main_metric) if not args.disable_tqdm else PlainProgress(phase, main_metric)
        )
    return trainer


def stopped_on_request(trainer: Trainer) -> bool:
    """Whether the phase stopped because of a signal (on any process of the run)."""
    return any(isinstance(c, StopOnRequest) and c.stopped for c in trainer.callback_handler.callbacks)
