"""The summary printed at the end of a run, one screen at most: the task's main metrics, per-class (per-target)
scores with the weakest classes first (so rare classes are seen), what the training log says (diagnostics), and
where things are. Everything else is in metrics.json and report.html."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from nlp_transfer.run.diagnostics import messages
from nlp_transfer.run.folder import REPORT_FILE
from nlp_transfer.run.phases import RunResult

# Shown first, in this order, when the task reports them (a task's main metrics, then the loss); other metrics
# (train.extra_metrics) follow, timings stay in metrics.json; per-class (per-target) metrics get a table of their own.
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
PER_CLASS_SHOWN = 10  # rows of the per-class table; with more classes, the weakest (by F1) are shown


def print_summary(result: RunResult, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True)  # a long path is one line to copy, not two
    metrics = result.metrics
    evaluated = [split for split in ("eval", "test") if split in metrics]
    table = Table(title="Results", show_edge=False)
    table.add_column("metric")
    for split in evaluated:
        table.add_column(split, justify="right")
    found = {key.removeprefix(f"{s}_") for s in evaluated for key in metrics[s] if key.startswith(f"{s}_")}
    classes = sorted({k.removeprefix("support_") for k in found if k.startswith("support_")})
    targets = sorted({k.removeprefix("pearson_") for k in found if k.startswith("pearson_")})
    breakdown = {f"{m}_{c}" for m in PER_CLASS for c in classes} | {f"{m}_{t}" for m in PER_TARGET for t in targets}
    extra = sorted(found - set(HEADLINE) - breakdown - NOT_SHOWN)
    for name in [n for n in HEADLINE if n in found] + (extra if len(extra) <= 12 else []):
        table.add_row(name, *[_fmt(metrics[s].get(f"{s}_{name}")) for s in evaluated])
    console.print(table)
    if classes or targets:
        console.print(_breakdown(metrics[evaluated[-1]], evaluated[-1], classes, targets))
    train = metrics["train"]
    console.print(
        f"trained {train.get('trainable_parameters', 0):,} of {train.get('total_parameters', 0):,} parameters "
        f"({train.get('method')}) in {train.get('train_wall_seconds', 0):.1f}s"
        + (f", features {train['feature_seconds']:.1f}s" if "feature_seconds" in train else "")
    )
    for name, phase in metrics.get("phases", {}).items():
        main = next((n for n in HEADLINE if f"eval_{n}" in phase["eval"]), "loss")
        console.print(
            f"  phase {name}: {phase['train'].get('trainable_parameters', 0):,} trainable, "
            f"{phase['train'].get('phase_wall_seconds', 0):.1f}s, eval {main} {_fmt(phase['eval'].get(f'eval_{main}'))}"
        )
    for message in messages(metrics.get("diagnostics", {})):
        console.print(f"note: {message}")
    for note in result.notes:
        console.print(f"data: {note}")
    console.print(f"run folder: {result.run_dir}")
    console.print(f"report:     {result.run_dir / REPORT_FILE}")
    console.print(f"predict:    nlp-transfer predict {result.run_dir} {result.predict_example}")


def _breakdown(metrics: dict[str, Any], split: str, classes: list[str], targets: list[str]) -> Table:
    """Per class (the weakest first, so the classes a model neglects are in view; at most PER_CLASS_SHOWN) or per
    target, on one split."""
    columns, rows = (PER_CLASS, classes) if classes else (PER_TARGET, targets)
    title = f"Per {'class' if classes else 'target'} ({split})"
    if classes:
        rows = sorted(classes, key=lambda c: (float(metrics.get(f"{split}_f1_{c}") or 0), c))
        if len(rows) > PER_CLASS_SHOWN:
            title += f": the {PER_CLASS_SHOWN} weakest of {len(rows)} classes by F1"
            rows = rows[:PER_CLASS_SHOWN]
    table = Table(title=title, show_edge=False)
    table.add_column("class" if classes else "target")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row, *[_fmt(metrics.get(f"{split}_{column}_{row}")) for column in columns])
    return table


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
    return "-" if value is None else str(value)
