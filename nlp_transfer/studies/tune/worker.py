"""One tune worker: it runs trials until the study has its finished trials (complete or pruned) or its time is up.

Several workers (processes here, or machines sharing a database) can serve one study. A worker starts a trial only
when the finished and running trials fall short of tune.trials; when the running ones would make up the count it
waits, because one of them may yet die: its trial is then queued again (storage.py) and the waiting worker runs it.
Two workers that start a trial at the same instant could overshoot; the later-numbered trial sees that and ends at
once, marked failed as not needed. So the study finishes with exactly tune.trials finished trials.

Each trial is tune.seeds normal runs (train.pipeline.run), the first into <tune folder>/trials/trial-<n>; a Trainer
callback reports the eval metric (the mean over the seeds run so far) to Optuna after every evaluation, and the
pruner may stop the trial there (trial.py).
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

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import TuneSpec
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.storage import optuna_module
from nlp_transfer.studies.tune.trial import ReportToTrial, SeedRun, StabilityGuard, crowned, record, seed_run

TRIALS_DIR = "trials"
WORKER = f"{socket.gethostname()}:{os.getpid()}"
FAILURES_IN_A_ROW = 3  # trials failing one after another: the recipe, not the settings, is at fault


class NotNeeded(Exception):
    """Another worker's trial took the last place in the study (two asked at the same instant)."""


class TrialFailed(Exception):
    """A trial's run failed on its settings (diverged, rejected): the study goes on without it."""


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
        trial.set_user_attr("worker", WORKER)
        self._check_needed(trial)
        values = self.space.suggest(trial)
        run_dir = self.folder / TRIALS_DIR / f"trial-{trial.number}"
        trial.set_user_attr("run_dir", str(run_dir))
        print(f"[trial {trial.number}] {describe(values)}", flush=True)
        runs: list[SeedRun] = []
        earlier: list[list[float]] = []  # each finished seed's values at its evaluations, for the pruner's mean
        for index in range(self.spec.seeds):
            seed = self.seed + index
            # The first seed's run folder is the trial's (kept if it is the best); the others only give a score.
            seed_dir = run_dir if index == 0 else run_dir.with_name(f"{run_dir.name}-seed-{seed}")
            reporter = ReportToTrial(trial, f"eval_{self.metric}", index, earlier)
            guard = StabilityGuard()
            metrics = self._run_seed(trial, values, seed_dir, seed, [reporter, guard], run_dir)
            runs.append(seed_run(seed, metrics, self.metric, guard))
            earlier.append(reporter.values)
            if guard.diverged_at is not None:
                print(
                    f"[trial {trial.number}] seed {seed}: training loss back at chance (step {guard.diverged_at}): "
                    "diverged",
                    flush=True,
                )
            if index > 0:
                shutil.rmtree(seed_dir, ignore_errors=True)
        value = record(trial, runs, self.metric)
        trial.set_user_attr("eval", metrics["eval"])
        spread = f" ± {trial.user_attrs['spread']:.4f} over {len(runs)} seeds" if len(runs) > 1 else ""
        verdicts = [] if trial.user_attrs["learned"] else ["has not learned the task (no better than the baseline)"]
        verdicts += ["diverged"] if trial.user_attrs["diverged"] else []
        print(
            f"[trial {trial.number}] eval {self.metric} {value:.4f}{spread}" + "".join(f"; {v}" for v in verdicts),
            flush=True,
        )
        return value

    def _run_seed(
        self, trial: Any, values: dict[str, Any], seed_dir: Path, seed: int, callbacks: list[Any], run_dir: Path
    ) -> dict[str, Any]:
        """One seed's run of the trial's settings; a pruned or failed one removes every folder the trial made."""
        optuna = optuna_module()
        from nlp_transfer.train.pipeline import RunOptions, run

        try:
            # Each value was checked alone before the search; a combination can still be refused (a bad trial).
            recipe = self.space.recipe(values, seed_dir, where=f"trial {trial.number}", seed=seed)
            return run(recipe, RunOptions(output_dir=seed_dir, overwrite=True, callbacks=callbacks)).metrics
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except optuna.TrialPruned as pruned:
            print(f"[trial {trial.number}] pruned: {pruned}", flush=True)
            self._remove(run_dir)
            raise
        except UserError as err:  # e.g. the loss diverged at this learning rate: a bad setting, not a bad study
            trial.set_user_attr("error", str(err))
            print(f"[trial {trial.number}] failed: {err}", flush=True)
            self._remove(run_dir)
            raise TrialFailed(str(err)) from err

    @staticmethod
    def _remove(run_dir: Path) -> None:
        shutil.rmtree(run_dir, ignore_errors=True)
        for extra in run_dir.parent.glob(f"{run_dir.name}-seed-*"):
            shutil.rmtree(extra, ignore_errors=True)

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
        best_trial = crowned(self.study)  # a trial that has not learned, or diverged, keeps no folder
        best = best_trial.number if best_trial is not None else None
        for trial in trials:
            if trial.state in (states.COMPLETE, states.PRUNED, states.FAIL) and trial.number != best:
                shutil.rmtree(self.folder / TRIALS_DIR / f"trial-{trial.number}", ignore_errors=True)


def describe(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{path}={value:.4g}" if isinstance(value, float) else f"{path}={value}" for path, value in values.items()
    )
