"""The order a reader meets a run's metrics in, the same in the terminal summary, report.html and the card: the
task's headline metrics first (then the loss, then a few extra metrics), and the per-class / per-label /
per-target breakdown apart, after the verdicts and the figures. Formatting is shared too, so a count (a support)
prints as a count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Shown first, in this order, when the task reports them (a task's main metrics, then the loss); other metrics
# (train.extra_metrics) follow, timings stay in metrics.json.
HEADLINE = (
    "accuracy",
    "macro_f1",
    "micro_f1",
    "subset_accuracy",
    "macro_roc_auc",
    "macro_f1_fixed",
    "pearson",
    "spearman",
    "r2",
    "mae",
    "mse",
    "exact_match",
    "f1",
    "loss",
)
NOT_SHOWN = {"runtime", "samples_per_second", "steps_per_second", "epoch"}
PER_CLASS = ("precision", "recall", "f1", "support")  # classification and multi-label: <metric>_<class>
PER_TARGET = ("pearson", "spearman", "r2", "mae", "mse")  # regression with several targets: <metric>_<target>
EXTRA_SHOWN = 12  # more extra metrics than this stay out of the headline table (they are in metrics.json)
COUNTS = ("support",)  # metrics that count rows: printed as whole numbers


@dataclass(frozen=True)
class MetricOrder:
    headline: list[str]  # metric names (without the split prefix), in the order shown
    classes: list[str]  # per-class (per-label) breakdown: names with a support_<name> metric
    targets: list[str]  # per-target breakdown: names with a pearson_<name> metric

    @property
    def breakdown(self) -> tuple[tuple[str, ...], list[str]]:
        """(the columns, the rows) of the breakdown table; no rows when the task has none."""
        return (PER_CLASS, self.classes) if self.classes else (PER_TARGET, self.targets)


def order(metrics: dict[str, Any], splits: Sequence[str]) -> MetricOrder:
    """`metrics`: metrics.json's content; `splits`: those to read (eval, test), each keyed `<split>_<metric>`."""
    found = {
        key.removeprefix(f"{s}_")
        for s in splits
        for key, value in metrics.get(s, {}).items()
        if key.startswith(f"{s}_") and isinstance(value, int | float)
    }
    classes = sorted({k.removeprefix("support_") for k in found if k.startswith("support_")})
    targets = sorted({k.removeprefix("pearson_") for k in found if k.startswith("pearson_")})
    breakdown = {f"{m}_{c}" for m in PER_CLASS for c in classes} | {f"{m}_{t}" for m in PER_TARGET for t in targets}
    extra = sorted(found - set(HEADLINE) - breakdown - NOT_SHOWN)
    headline = [n for n in HEADLINE if n in found] + (extra if len(extra) <= EXTRA_SHOWN else [])
    return MetricOrder(headline=headline, classes=classes, targets=targets)


def weakest_first(metrics: dict[str, Any], split: str, classes: list[str]) -> list[str]:
    """Classes by their F1 on `split`, the weakest first (the classes a model neglects come into view)."""
    return sorted(classes, key=lambda c: (float(metrics.get(f"{split}_f1_{c}") or 0), c))


def fmt(value: object, name: str = "") -> str:
    """A metric value as shown: counts as whole numbers (a zero support is 0), scores with four decimals."""
    if isinstance(value, int | float) and not isinstance(value, bool) and name.startswith(COUNTS):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
    return "-" if value is None else str(value)
