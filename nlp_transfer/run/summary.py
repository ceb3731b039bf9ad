"""The one-screen summary printed at the end of a run: metric table and where things were saved."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nlp_transfer.run.pipeline import RunResult

# Shown first, in this order, when present; per-class (per-target) metrics get a table of their own.
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
    "runtime",
    "samples_per_second",
)
PER_CLASS = ("precision", "recall", "f1", "support")  # classification and multi-label: <metric>_<class>
PER_TARGET = ("pearson", "spearman", "r2", "mae", "mse")  # regression with several targets: <metric>_<target>


def print_summary(result: RunResult, console: Console | None = None) -> None:
    console = console or Console()
    evaluated = [split for split in ("eval", "test") if split in result.metrics]
    table = Table(title="Results", show_edge=False)
    table.add_column("metric")
    for split in evaluated:
        table.add_column(split, justify="right")
    found = {key.removeprefix(f"{s}_") for s in evaluated for key in result.metrics[s] if key.startswith(f"{s}_")}
    classes = sorted({k.removeprefix("support_") for k in found if k.startswith("support_")})
    targets = sorted({k.removeprefix("pearson_") for k in found if k.startswith("pearson_")})
    breakdown = {f"{m}_{c}" for m in PER_CLASS for c in classes} | {f"{m}_{t}" for m in PER_TARGET for t in targets}
    names = [n for n in HEADLINE if n in found]
    extra = sorted(found - set(HEADLINE) - breakdown)
    for name in names + (extra if len(extra) <= 24 else []):
        table.add_row(name, *[_fmt(result.metrics[s].get(f"{s}_{name}")) for s in evaluated])
    console.print(table)
    if classes or targets:
        console.print(_breakdown(result.metrics[evaluated[-1]], evaluated[-1], classes, targets))
    train = result.metrics["train"]
    console.print(
        f"trained {train.get('trainable_parameters', 0):,} of {train.get('total_parameters', 0):,} parameters "
        f"({train.get('method')}) in {train.get('train_wall_seconds', 0):.1f}s"
        + (f", features {train['feature_seconds']:.1f}s" if "feature_seconds" in train else "")
    )
    for name, stage in result.metrics.get("stages", {}).items():
        main = next((n for n in HEADLINE if f"eval_{n}" in stage["eval"]), "loss")
        console.print(
            f"  stage {name}: {stage['train'].get('trainable_parameters', 0):,} trainable, "
            f"{stage['train'].get('stage_wall_seconds', 0):.1f}s, eval {main} {_fmt(stage['eval'].get(f'eval_{main}'))}"
        )
    for note in result.notes:
        console.print(f"note: {note}")
    run_dir = result.run_dir
    console.print(f"run folder: {run_dir}  (model or adapter, tokenizer, README.md card, metrics.json, logs)")
    console.print(f"predict:    nlp-transfer predict {run_dir} {result.predict_example}")


def _breakdown(metrics: dict[str, object], split: str, classes: list[str], targets: list[str]) -> Table:
    """Per class (rarest first, so the classes a model neglects are in view) or per target, on one split."""
    columns, rows = (PER_CLASS, classes) if classes else (PER_TARGET, targets)
    if classes:
        rows = sorted(classes, key=lambda c: float(metrics.get(f"{split}_support_{c}") or 0))  # type: ignore[arg-type]
    table = Table(title=f"Per {'class' if classes else 'target'} ({split})", show_edge=False)
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
