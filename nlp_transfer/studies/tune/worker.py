"""One tune worker: it runs trials until the study has its finished trials (complete or pruned) or its time is up.

Several workers (processes here, or machines sharing a database) can serve one study. A worker starts a trial only
when the finished and running trials fall short of tune.trials; when the running ones would make up the count it
waits, because one of them may yet die: its trial is then queued again (storage.py) and the waiting worker runs it.
Two workers that start a trial at the same instant could overshoot; the later-numbered trial sees that and ends at
once, marked failed as not needed. So the study finishes with exactly tune.trials finished trials.

Each trial is a normal run (train.pipeline.run) into <tune folder>/trials/trial-<n>; a Trainer callback reports the
eval metric to Optuna after every evaluation, and the pruner may stop the trial there.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import TuneSpec
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.storage import optuna_module

TRIALS_DIR = "trials"
WORKER = f"{socket.gethostname()}:{os.getpid()}"
FAILURES_IN_A_ROW = 3  # trials failing one after another: the recipe, not the settings, is at fault


class NotNeeded(Exception):
    """Another worker's trial took the last place in the study (two asked at the same instant)."""


class TrialFailed(Exception):
    """A trial's run failed on its settings (diverged, rejected): the study goes on without it."""


class ReportToTrial(TrainerCallback):
    """After each evaluation during training: report the eval metric to the trial, and stop it if the pruner says so.

    Evaluations after training (the best checkpoint re-scored, the test set) are not reported: they are not a step."""

    def __init__(self, trial: Any, key: str) -> None:
        self.trial, self.key = trial, key
        self.reported = 0
        self.training = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.training = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.training = False

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **_: Any
    ) -> None:
        if not self.training or not metrics or self.key not in metrics:
            return
        self.trial.report(float(metrics[self.key]), step=self.reported)
        self.reported += 1
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_after_evaluations", self.reported)
            raise optuna_module().TrialPruned(f"{self.key} {metrics[self.key]:.4f} after {self.reported} evaluations")


@dataclass
class Worker:
    study: Any
    space: SearchSpace
    spec: TuneSpec
    folder: Path
    metric: str
    seed: int

    def run(self) -> int:
        """Run trials until the study is done or the time budget is spent; returns how many this worker finished."""
        optuna = optuna_module()
        states = optuna.trial.TrialState
        started, finished_here, failures = time.monotonic(), 0, 0
        budget = self.spec.timeout_minutes * 60 if self.spec.timeout_minutes else None
        while budget is None or time.monotonic() - started < budget:
            trials = self.study.get_trials(deepcopy=False)
            finished = sum(t.state in (states.COMPLETE, states.PRUNED) for t in trials)
            running = sum(t.state == states.RUNNING for t in trials)
            wanted = self.spec.trials
            if wanted is not None and finished >= wanted:
                break
            if wanted is not None and finished + running >= wanted:
                # The others' trials would finish the study; wait, in case one of their workers dies.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(self.study)
                time.sleep(min(5.0, float(self.spec.heartbeat_seconds)))
                continue
            # A fresh sampler per trial, seeded by the trial count: one worker's study is reproducible, a resumed
            # study does not replay its first random trials, and workers starting apart draw different ones.
            self.study.sampler = optuna.samplers.TPESampler(
                seed=self.seed + len(trials), n_startup_trials=self.spec.startup_trials
            )
            before = len(trials)
            try:
                self.study.optimize(self.objective, n_trials=1, catch=(NotNeeded, TrialFailed))
            except KeyboardInterrupt:
                self._requeue_interrupted()
                raise
            last = self._own_last_trial(before)
            if last is not None and last.state in (states.COMPLETE, states.PRUNED):
                finished_here, failures = finished_here + 1, 0
            elif last is not None and last.user_attrs.get("error"):
                failures += 1
                if failures >= FAILURES_IN_A_ROW:
                    raise UserError(f"tune: {failures} trials in a row failed; the last: {last.user_attrs['error']}")
            self.tidy()
        return finished_here

    def objective(self, trial: Any) -> float:
        optuna = optuna_module()
        from nlp_transfer.train.pipeline import RunOptions, run

        trial.set_user_attr("worker", WORKER)
        self._check_needed(trial)
        values = self.space.suggest(trial)
        run_dir = self.folder / TRIALS_DIR / f"trial-{trial.number}"
        trial.set_user_attr("run_dir", str(run_dir))
        print(f"[trial {trial.number}] {describe(values)}", flush=True)
        reporter = ReportToTrial(trial, f"eval_{self.metric}")
        try:
            # Each value was checked alone before the search; a combination can still be refused (a bad trial).
            recipe = self.space.recipe(values, run_dir, where=f"trial {trial.number}")
            result = run(recipe, RunOptions(output_dir=run_dir, overwrite=True, callbacks=[reporter]))
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except optuna.TrialPruned as pruned:
            print(f"[trial {trial.number}] pruned: {pruned}", flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        except UserError as err:  # e.g. the loss diverged at this learning rate: a bad setting, not a bad study
            trial.set_user_attr("error", str(err))
            print(f"[trial {trial.number}] failed: {err}", flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            raise TrialFailed(str(err)) from err
        value = float(result.metrics["eval"][f"eval_{self.metric}"])
        trial.set_user_attr("train_seconds", result.metrics["train"].get("train_wall_seconds"))
        trial.set_user_attr("eval", result.metrics["eval"])
        print(f"[trial {trial.number}] eval {self.metric} {value:.4f}", flush=True)
        return value

    def _check_needed(self, trial: Any) -> None:
        """The study's last places go to the lowest-numbered trials; a later one that finds none left is not run."""
        if self.spec.trials is None:
            return
        states = optuna_module().trial.TrialState
        taken = self.study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED, states.RUNNING))
        if sum(t.number < trial.number for t in taken) >= self.spec.trials:
            trial.set_user_attr("not_needed", True)
            raise NotNeeded(f"trial {trial.number}: the study's {self.spec.trials} trials are taken")

    def _own_last_trial(self, before: int) -> Any:
        mine = [t for t in self.study.get_trials(deepcopy=False)[before:] if t.user_attrs.get("worker") == WORKER]
        return mine[-1] if mine else None

    def _requeue_interrupted(self) -> None:
        """A trial stopped by Ctrl-C or SIGTERM is failed (Optuna marks it); queue its settings to be run again."""
        trials = self.study.get_trials(deepcopy=False)
        queued = {t.user_attrs.get("retry_of") for t in trials}
        for trial in trials:
            mine = trial.user_attrs.get("worker") == WORKER and trial.user_attrs.get("interrupted")
            if mine and trial.params and trial.number not in queued:
                self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})

    def tidy(self) -> None:
        """Delete the run folders of finished trials that are not the best: the best trial's folder is kept."""
        states = optuna_module().trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == states.COMPLETE]
        best = self.study.best_trial.number if complete else None
        for trial in trials:
            if trial.state in (states.COMPLETE, states.PRUNED, states.FAIL) and trial.number != best:
                shutil.rmtree(self.folder / TRIALS_DIR / f"trial-{trial.number}", ignore_errors=True)


def describe(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={value}" for path, value in values.items()
    )
