"""Trainer callbacks: the log file, extra checkpoints, sealing them, a clean stop on request, and progress.

These use the Trainer's public callback events (on_log, on_step_end, on_save, on_epoch_end). Decisions that every
process of a multi-process run must take together (stopping) go through accelerate's trigger, an all-reduce: one
rank receiving SIGTERM stops all of them at the same step instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import ProgressCallback, TrainerCallback
from transformers.trainer_utils import has_length

from nlp_transfer.train import checkpoints
from nlp_transfer.train.interruption import STOP

BAR_DELAY = 2.0  # seconds a phase runs before its bar is drawn: nothing for work under a second or two


class JsonlLogger(TrainerCallback):
    """Every Trainer log line (loss, learning rate, eval metrics) as one JSON object per line."""

    def __init__(self, path: Path, phase: str) -> None:
        self.path = path
        self.phase = phase

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(
                    json.dumps({"phase": self.phase, "step": state.global_step, "epoch": state.epoch, **logs}) + "\n"
                )


class SaveEvery(TrainerCallback):
    """A resumable checkpoint every `steps` optimizer steps, besides those the evaluations save."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.steps == 0:
            control.should_save = True


class SealCheckpoints(TrainerCallback):
    """After the Trainer saved checkpoint-<step> (on_save follows every save), seal it and rotate (checkpoints.py):
    a checkpoint counts only once sealed, and older ones are deleted only after a newer one is.

    Sealing hashes every file of the checkpoint (gigabytes with the optimizer's state) on the process that saved it.
    It runs on a thread of its own while training goes on: done in on_save, it would hold that process, and with it
    every other process of a launch at the next step's collective. One thread takes the saves in order (a seal, then
    its rotation, then the next), and the phase waits for it at its end (on_train_end), before anything reads which
    checkpoints are sealed. A crash before a seal is written leaves that checkpoint unsealed: it does not count."""

    def __init__(self) -> None:
        self.sealer: ThreadPoolExecutor | None = None  # started by the first save, ended with the phase
        self.pending: list[Future[None]] = []

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not args.should_save:  # only the process that writes checkpoints seals them
            return
        phase_dir = Path(str(args.output_dir))
        checkpoint = phase_dir / f"checkpoint-{state.global_step}"
        best = Path(state.best_model_checkpoint) if state.best_model_checkpoint else None
        if self.sealer is None:
            self.sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seal-checkpoints")
        self.pending.append(self.sealer.submit(_seal_and_rotate, phase_dir, checkpoint, best))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.wait()

    def wait(self) -> None:
        """Every seal asked for so far is written (an error in one is raised here); the thread ends."""
        pending, self.pending = self.pending, []
        try:
            for seal in pending:
                seal.result()
        finally:
            if self.sealer is not None:
                self.sealer.shutdown(wait=True)
                self.sealer = None


def finish_seals(callbacks: list[TrainerCallback]) -> None:
    """Before reading which checkpoints are sealed while the Trainer still runs (a diverged run names its last
    good one): the seals asked for so far are written."""
    for callback in callbacks:
        if isinstance(callback, SealCheckpoints):
            callback.wait()


def _seal_and_rotate(phase_dir: Path, checkpoint: Path, best: Path | None) -> None:
    checkpoints.seal(checkpoint)
    checkpoints.rotate(phase_dir, protect=best)


class StopOnRequest(TrainerCallback):
    """Ctrl-C or SIGTERM during training (interruption.py): save a checkpoint after this step, then stop.

    `accelerator` is the Trainer's: set_trigger on the process that was signalled, check_trigger (an all-reduce) on
    every process, so all stop after the same step and save one checkpoint together."""

    def __init__(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        self.stopped = False  # the same on every process: whether this phase stopped on request

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.accelerator.num_processes == 1:
            stop = STOP.requested  # no all-reduce (and no device sync) per step when there is no one to agree with
        else:
            if STOP.requested:
                self.accelerator.set_trigger()
            stop = self.accelerator.check_trigger()
        if stop:
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Stopping mid-epoch ends the epoch: its evaluation would score a part-trained model and could make it the
        # "best" checkpoint, which a resumed run would then load at its end. The step's checkpoint is saved already.
        if self.stopped:
            control.should_evaluate = False
            control.should_save = False


def eval_line(phase: str, state: Any, metrics: dict[str, Any], main: str | None) -> str:
    """One compact line per evaluation: where in training, the loss, and the metric that picks the checkpoint."""
    shown = [f"eval loss {metrics['eval_loss']:.4f}"] if "eval_loss" in metrics else []
    if main and main != "loss" and f"eval_{main}" in metrics:
        shown.append(f"{main} {metrics[f'eval_{main}']:.4f}")
    where = f"epoch {state.epoch:g}" if state.epoch is not None else f"step {state.global_step}"
    return f"{phase}: {where} (step {state.global_step}): " + ", ".join(shown)


class ProgressBar(ProgressCallback):
    """The Trainer's progress bar on a terminal: one bar per phase, drawn once the phase has run a couple of
    seconds (nothing for shorter work); an evaluation during training shows in that bar ("evaluating 3/10") rather
    than as a second bar (whose cursor-up codes a terminal log keeps as stray `[A`), and ends in one compact line
    instead of a dict per log (the full log is in trainer_log.jsonl and on curves.png). An evaluation outside
    training (the kept checkpoint scored again) gets a bar of its own only when it takes that long too."""

    def __init__(self, phase: str, main_metric: str | None) -> None:
        super().__init__()
        self.phase, self.main_metric = phase, main_metric
        self.evaluated = 0  # batches of the evaluation under way

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, desc=self.phase, dynamic_ncols=True, delay=BAR_DELAY)
        self.current_step = 0

    def on_prediction_step(
        self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not has_length(eval_dataloader):
            return
        total = len(eval_dataloader)
        if self.training_bar is not None:
            self.evaluated += 1
            self.training_bar.set_postfix_str(f"evaluating {self.evaluated}/{total}", refresh=False)
            self.training_bar.update(0)  # redraws at most every mininterval
            return
        if self.prediction_bar is None:
            self.prediction_bar = tqdm(total=total, desc="evaluating", leave=False, dynamic_ncols=True, delay=BAR_DELAY)
        bar: Any = self.prediction_bar
        bar.update(1)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.evaluated = 0
        if self.training_bar is not None:
            self.training_bar.set_postfix_str("", refresh=False)
        super().on_evaluate(args, state, control, **kwargs)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "eval_loss" in logs and state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.set_postfix_str("", refresh=False)  # the evaluation is over (logged before on_evaluate)
            self.training_bar.write(eval_line(self.phase, state, logs, self.main_metric))


class QuietProgress(TrainerCallback):
    """Given among a run's callbacks (RunOptions.callbacks): the run shows no progress, neither bar nor lines. A
    study's cells (compare) print one line each instead of one per evaluation."""


class PlainProgress(TrainerCallback):
    """Where stderr is not a terminal (a log file, CI) a bar would print hundreds of lines: a line at every tenth of
    the phase (step, loss, speed, time left) and one per evaluation instead."""

    def __init__(self, phase: str, main_metric: str | None) -> None:
        self.phase, self.main_metric = phase, main_metric
        self.started = time.monotonic()
        self.next_share = 0.1
        self.loss: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.monotonic()
        self.first_step = state.global_step  # resumed runs start part-way
        self.next_share = (state.global_step / state.max_steps if state.max_steps else 0) + 0.1

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if "eval_loss" in logs:
            sys.stderr.write(eval_line(self.phase, state, logs, self.main_metric) + "\n")

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not state.max_steps:
            return
        share = state.global_step / state.max_steps
        if share + 1e-9 < self.next_share and state.global_step != state.max_steps:
            return
        self.next_share = share + 0.1
        elapsed = time.monotonic() - self.started
        done = state.global_step - self.first_step
        left = elapsed / done * (state.max_steps - state.global_step) if done else 0.0
        loss = f", loss {self.loss:.4f}" if self.loss is not None else ""
        sys.stderr.write(
            f"{self.phase}: step {state.global_step}/{state.max_steps} ({share:.0%}){loss}, "
            f"{elapsed:.0f}s elapsed, about {left:.0f}s left\n"
        )


def quiet_progress(trainer: Any) -> None:
    """After training: the evaluations that follow score the kept checkpoint for the summary, not progress (a
    terminal's bar stays: it draws only an evaluation long enough to wait for)."""
    for callback in list(trainer.callback_handler.callbacks):
        if isinstance(callback, PlainProgress):
            trainer.remove_callback(callback)
