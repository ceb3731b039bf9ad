"""The summary printed at the end of a run, one screen at most: the task's main metrics, per-class F1 (so rare
classes are seen), what the training log says (diagnostics), and where things are. Everything else is in
metrics.json and report.html."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from nlp_transfer.run.diagnostics import messages
from nlp_transfer.run.folder import REPORT_FILE
from nlp_transfer.run.phases import RunResult

# Shown in this order when the task reports them (a task's main metrics, then the loss).
HEADLINE = ("accuracy", "macro_f1", "micro_f1", "exact_match", "f1", "pearson", "spearman", "mae", "loss")
PER_CLASS_SHOWN = 10  # classes listed on the per-class line; with more, the weakest are shown


def print_summary(result: RunResult, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True)  # a long path is one line to copy, not two
    metrics = result.metrics
    evaluated = [split for split in ("eval", "test") if split in metrics]
    table = Table(title="Results", show_edge=False)
    table.add_column("metric")
    for split in evaluated:
        table.add_column(split, justify="right")
    for name in [n for n in HEADLINE if any(f"{s}_{n}" in metrics[s] for s in evaluated)]:
        table.add_row(name, *[_fmt(metrics[s].get(f"{s}_{name}")) for s in evaluated])
    console.print(table)
    per_class = _per_class_line(metrics.get("eval", {}))
    if per_class:
        console.print(per_class)
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


def _per_class_line(evaluated: dict[str, Any]) -> str | None:
    """`per-class F1 (eval): joy 0.61 (161), grief 0.00 (6), ...`: the weakest classes first when there are many."""
    scores = {
        key.removeprefix("eval_f1_"): value
        for key, value in evaluated.items()
        if key.startswith("eval_f1_") and isinstance(value, float)
    }
    if len(scores) < 2:
        return None
    support = {name: evaluated.get(f"eval_support_{name}") for name in scores}
    names = list(scores)
    if len(names) > PER_CLASS_SHOWN:
        names = sorted(names, key=scores.__getitem__)[:PER_CLASS_SHOWN]
    shown = ", ".join(
        f"{name} {scores[name]:.2f}" + (f" ({support[name]:.0f})" if support[name] is not None else "")
        for name in names
    )
    which = f"the {PER_CLASS_SHOWN} weakest of {len(scores)}" if len(scores) > PER_CLASS_SHOWN else "support"
    return f"per-class F1 on eval ({which}): {shown}"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
    return "-" if value is None else str(value)
