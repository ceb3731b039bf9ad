"""One trial's settings trained on tune.seeds seeds (train.seed, train.seed + 1, ...) and scored by their mean.

One seed's dev score rewards lucky, aggressive settings; the mean over seeds does less so. Pruning sees the mean of
what has run: at evaluation i of seed k a trial reports, at step k * SEED_STRIDE + i, the mean of seed k's value and
the earlier seeds' values at their evaluation i, so the pruner compares trials at the same point of the same seed.

Two checks decide whether a trial may be crowned best (`crowned`):
- learned: its mean beats the trivial baseline its runs' diagnostics name (the majority class for classification)
  by the diagnostics' margin; a trial at the baseline has not learned the task, whatever its rank;
- stable: no seed's training loss rose back to where it started (chance, for a fresh head) after falling. Such a
  seed is stopped there (StabilityGuard), marked diverged, and scored at the baseline, which is what it has become.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from transformers import TrainerCallback

from nlp_transfer.recipe import lower_is_better
from nlp_transfer.report.diagnostics import BASELINE_MARGIN
from nlp_transfer.studies.tune.storage import optuna_module

SEED_STRIDE = 1000  # pruning steps of seed k start at k * SEED_STRIDE (a trial evaluates fewer times than this)


class ReportToTrial(TrainerCallback):
    """After each evaluation during training: report the eval metric (the mean with the trial's earlier seeds at the
    same evaluation) to the trial, and stop it if the pruner says so.

    Evaluations after training (the best checkpoint re-scored, the test set) are not reported: they are not a step."""

    def __init__(self, trial: Any, key: str, seed_index: int = 0, earlier: list[list[float]] | None = None) -> None:
        self.trial, self.key = trial, key
        self.offset = seed_index * SEED_STRIDE
        self.earlier = [values for values in earlier or [] if values]  # earlier seeds' values at each evaluation
        self.values: list[float] = []  # this seed's, as evaluated
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
        index = len(self.values)
        self.values.append(float(metrics[self.key]))
        # An earlier seed that evaluated fewer times stands at its last evaluation.
        alongside = [values[min(index, len(values) - 1)] for values in self.earlier]
        mean = statistics.fmean([self.values[-1], *alongside])
        self.trial.report(mean, step=self.offset + index)
        self.reported += 1
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_after_evaluations", self.offset + self.reported)
            seeds = f" (mean of {len(alongside) + 1} seeds)" if alongside else ""
            raise optuna_module().TrialPruned(f"{self.key} {mean:.4f}{seeds} after {self.reported} evaluations")


class StabilityGuard(TrainerCallback):
    """Stops a phase whose training loss, after falling, rises back to where it started (its first logged value:
    a fresh head's loss, chance): the settings trained the model and then undid it."""

    FELL = 0.8  # the loss fell below 80% of its first value: the model had learned something
    BACK = 0.95  # then two logged losses in a row at 95% of the first value or more: back at chance

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.diverged_at: int | None = None  # the step at which the guard stopped training

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.losses = []  # each phase from its own start (a probe phase's head is trained before the next)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any) -> None:
        if logs is None or "loss" not in logs or self.diverged_at is not None:
            return
        self.losses.append(float(logs["loss"]))
        if rose_back(self.losses, self.FELL, self.BACK):
            self.diverged_at = int(state.global_step)
            control.should_training_stop = True


def rose_back(losses: list[float], fell: float, back: float) -> bool:
    """Whether the loss fell below fell x its first value and its last two values are back at back x it or more."""
    if len(losses) < 3:
        return False
    start = losses[0]
    return min(losses[1:-2] or [start]) <= fell * start and all(loss >= back * start for loss in losses[-2:])


@dataclass(frozen=True)
class SeedRun:
    seed: int
    value: float  # the eval metric as scored: a diverged run's is the baseline
    measured: float  # the eval metric of the model the run kept
    baseline: float | None  # the trivial baseline's value of the metric (diagnostics), when the task has one
    diverged_at: int | None
    train_seconds: float | None


def seed_run(seed: int, metrics: dict[str, Any], metric: str, guard: StabilityGuard) -> SeedRun:
    measured = float(metrics["eval"][f"eval_{metric}"])
    found = metrics.get("diagnostics", {}).get("baseline", {}).get(metric)
    baseline = float(found) if isinstance(found, int | float) else None
    value = baseline if guard.diverged_at is not None and baseline is not None else measured
    seconds = metrics["train"].get("train_wall_seconds")
    return SeedRun(seed, value, measured, baseline, guard.diverged_at, seconds)


def learned(value: float, baseline: float | None, metric: str) -> bool:
    """The run diagnostics' rule: better than the baseline, by its margin where higher is better."""
    if baseline is None:
        return True
    return value < baseline if lower_is_better(metric) else value > baseline + BASELINE_MARGIN


def record(trial: Any, runs: list[SeedRun], metric: str) -> float:
    """The trial's score (the mean over its seeds), with what the report shows kept on the trial."""
    values = [run.value for run in runs]
    mean = statistics.fmean(values)
    baseline = next((run.baseline for run in runs if run.baseline is not None), None)
    trial.set_user_attr("seed_runs", [asdict(run) for run in runs])
    trial.set_user_attr("spread", statistics.stdev(values) if len(values) > 1 else None)
    trial.set_user_attr("baseline", baseline)
    trial.set_user_attr("learned", learned(mean, baseline, metric))
    trial.set_user_attr("diverged", [run.seed for run in runs if run.diverged_at is not None])
    trial.set_user_attr("train_seconds", sum(run.train_seconds or 0.0 for run in runs))
    return mean


def crowned(study: Any) -> Any:
    """The best complete trial that learned and never diverged; None when there is none."""
    states = optuna_module().trial.TrialState
    eligible = [
        t
        for t in study.get_trials(deepcopy=False, states=(states.COMPLETE,))
        if t.user_attrs.get("learned", True) and not t.user_attrs.get("diverged")
    ]
    if not eligible:
        return None
    sign = -1.0 if study.direction.name.lower() == "minimize" else 1.0
    return max(eligible, key=lambda t: (sign * t.value, -t.number))  # ties: the first found
