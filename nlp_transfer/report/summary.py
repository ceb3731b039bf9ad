"""The summary printed at the end of a run, one screen at most, the answer first: the task's headline metrics, what
the training log says (the kept checkpoint, the baseline, over-fitting), then per-class (per-target) scores with the
weakest classes first (so rare classes are seen), and where things are. Everything else is in metrics.json and
report.html."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from nlp_transfer.report.diagnostics import messages
from nlp_transfer.report.metric_order import HEADLINE, MetricOrder, fmt, order, weakest_first
from nlp_transfer.runfolder.folder import REPORT_FILE
from nlp_transfer.runfolder.result import RunResult

PER_CLASS_SHOWN = 10  # rows of the per-class table; with more classes, the weakest (by F1) are shown


def print_summary(result: RunResult, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True)  # a long path is one line to copy, not two
    metrics = result.metrics
    evaluated = [split for split in ("eval", "test") if split in metrics]
    table = Table(title="Results", show_edge=False)
    table.add_column("metric")
    for split in evaluated:
        table.add_column(split, justify="right")
    shown = order(metrics, evaluated)
    for name in shown.headline:
        table.add_row(name, *[fmt(metrics[s].get(f"{s}_{name}"), name) for s in evaluated])
    # The answer first: the headline metrics, then the verdicts, then the breakdown and the details.
    console.print(table)
    for message in messages(metrics.get("diagnostics", {})):
        console.print(f"note: {message}")
    if shown.classes or shown.targets:
        console.print(_breakdown(metrics[evaluated[-1]], evaluated[-1], shown))
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
            f"{phase['train'].get('phase_wall_seconds', 0):.1f}s, eval {main} {fmt(phase['eval'].get(f'eval_{main}'))}"
        )
    for note in result.notes:
        console.print(f"data: {note}")
    console.print(f"run folder: {result.run_dir}")
    console.print(f"report:     {result.run_dir / REPORT_FILE}")
    console.print(f"predict:    nlp-transfer predict {result.run_dir} {result.predict_example}")


def _breakdown(metrics: dict[str, Any], split: str, shown: MetricOrder) -> Table:
    """Per class (the weakest first, so the classes a model neglects are in view; at most PER_CLASS_SHOWN) or per
    target, on one split."""
    columns, rows = shown.breakdown
    title = f"Per {'class' if shown.classes else 'target'} ({split})"
    if shown.classes:
        rows = weakest_first(metrics, split, rows)
        if len(rows) > PER_CLASS_SHOWN:
            title += f": the {PER_CLASS_SHOWN} weakest of {len(rows)} classes by F1"
            rows = rows[:PER_CLASS_SHOWN]
    table = Table(title=title, show_edge=False)
    table.add_column("class" if shown.classes else "target")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row, *[fmt(metrics.get(f"{split}_{column}_{row}"), column) for column in columns])
    return table
