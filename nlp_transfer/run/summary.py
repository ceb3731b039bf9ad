"""The one-screen summary printed at the end of a run: metric table and where things were saved."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nlp_transfer.run.pipeline import RunResult

# Shown first, in this order, when present; per-class metrics follow for small label sets.
HEADLINE = ("accuracy", "macro_f1", "exact_match", "f1", "loss", "runtime", "samples_per_second")


def print_summary(result: RunResult, console: Console | None = None) -> None:
    console = console or Console()
    evaluated = [split for split in ("eval", "test") if split in result.metrics]
    table = Table(title="Results", show_edge=False)
    table.add_column("metric")
    for split in evaluated:
        table.add_column(split, justify="right")
    names = [n for n in HEADLINE if any(f"{s}_{n}" in result.metrics[s] for s in evaluated)]
    extra = sorted(
        {
            key.removeprefix(f"{s}_")
            for s in evaluated
            for key in result.metrics[s]
            if key.startswith(f"{s}_") and key.removeprefix(f"{s}_") not in HEADLINE
        }
    )
    for name in names + (extra if len(extra) <= 24 else []):
        table.add_row(name, *[_fmt(result.metrics[s].get(f"{s}_{name}")) for s in evaluated])
    console.print(table)
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


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.4f}"
    return "-" if value is None else str(value)
