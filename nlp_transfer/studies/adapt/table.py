"""The adaptation table: one row per chain of stages, as markdown (for people) and JSON (for scripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlp_transfer.run.folder import RunFolder

# column title -> how to show a row's value
COLUMNS: dict[str, tuple[str, str]] = {
    "source acc": ("source_accuracy", "percent"),
    "target acc": ("target_accuracy", "percent"),
    "target macro-F1": ("target_macro_f1", "percent"),
    "target entropy": ("target_entropy", "plain"),
    "target predicted shares": ("target_predicted_shares", "shares"),
    "time (s)": ("seconds", "plain"),
}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| model | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [_show(row.get(key), how) for key, how in COLUMNS.values()]
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _show(value: Any, how: str) -> str:
    if value is None:
        return "-"
    if how == "percent":
        return f"{100 * value:.2f}"
    if how == "shares":
        return " / ".join(f"{name} {100 * share:.0f}%" for name, share in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


def save_table(out_dir: Path, rows: list[dict[str, Any]]) -> str:
    """adapt_table.md (the table, what each column means) and adapt_table.json; returns the markdown table."""
    table = markdown_table(rows)
    explained = (
        "Source acc: accuracy on the labelled source eval split. Target acc / macro-F1: on adapt.target.test, whose "
        "labels are used for this evaluation only. Label-free signals, from the unlabelled target corpus: entropy "
        "(mean prediction entropy / log K; lower = more confident) and the predicted class shares (the true shares "
        "are unknown without labels; a model that predicts one class far more often than the source prior "
        "suggests is suspect). Time: wall seconds to build the row's model from scratch, shared stages included.\n"
    )
    folder = RunFolder(out_dir)
    folder.write_text("adapt_table.md", "# Domain adaptation\n\n" + table + "\n" + explained)
    folder.write_json("adapt_table.json", {"rows": rows})
    return table
