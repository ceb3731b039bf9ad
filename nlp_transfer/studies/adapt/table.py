"""The adaptation table: one row per chain of stages, as markdown (for people) and JSON (for scripts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlp_transfer.runfolder.folder import RunFolder

# column title -> how to show a row's value
COLUMNS: dict[str, tuple[str, str]] = {
    "source acc": ("source_accuracy", "percent"),
    "target acc": ("target_accuracy", "percent"),
    "target macro-F1": ("target_macro_f1", "percent"),
    "target entropy": ("target_entropy", "plain"),
    "target predicted shares": ("target_predicted_shares", "shares"),
    "target prior, estimated (cross-check)": ("target_estimated_prior", "prior"),
    "time (s)": ("seconds", "plain"),
}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table, the label-shift test, then the label-free warnings of each row (where its signals disagree)."""
    header = "| model | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = [_show(row.get(key), how, row) for key, how in COLUMNS.values()]
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    warnings = [f"- {row['row']}: {warning}" for row in rows for warning in row.get("warnings") or []]
    tested = next((row["label_shift_test"] for row in rows if row.get("label_shift_test")), None)
    test = f"\n{shift_test_line(tested)}\n" if tested else ""
    return (
        "\n".join(lines) + "\n" + test + ("\nWarnings (label-free):\n" + "\n".join(warnings) + "\n" if warnings else "")
    )


def shift_test_line(record: dict[str, Any]) -> str:
    """The label-shift test's result (shift_test.py), said once for the table: every row shares the corpus."""
    accuracy, bound = 100 * record["domain_classifier_accuracy"], 100 * record["label_shift_bound"]
    seen = f"a word-level classifier tells the target corpus from the source eval split {accuracy:.0f}% of the time"
    if record["rejects_label_shift"]:
        return (
            f"Label-shift test: REJECTED, {seen}, where label shift alone allows {bound:.0f}%: the classes do not look "
            "on the target as on the source, so the estimated prior (which assumes they do) is a guess."
        )
    return f"Label-shift test: passed, {seen} (label shift alone allows {bound:.0f}%)."


def _show(value: Any, how: str, row: dict[str, Any]) -> str:
    if value is None:
        return "-"
    if how == "prior":
        checks = row.get("target_prior_cross_check") or {}
        shown = [
            f"{name}: " + " / ".join(f"{100 * share:.0f}%" for share in shares.values())
            for name, shares in checks.items()
        ]
        return _show(value, "shares", row) + (f" ({'; '.join(shown)})" if shown else "")
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
        "(mean prediction entropy / log K; lower = more confident), the predicted class shares, and the target's "
        "class prior estimated without labels (adapt.label_shift: EM on calibrated posteriors, Saerens et al. 2002, "
        "or BBSE, Lipton et al. 2018; the other estimator in brackets). A model whose predicted shares are far from "
        "the estimated prior has a decision threshold that does not fit the target; estimators that disagree mean "
        "the classes look different on the target, and neither estimate is sure. +prior correction rows apply the "
        "estimated prior (label_prior.json in the model folder; predict, evaluate and export apply it). Time: wall "
        "seconds to build the row's model from scratch, shared stages included.\n"
    )
    folder = RunFolder(out_dir)
    folder.write_text("adapt_table.md", "# Domain adaptation\n\n" + table + "\n" + explained)
    folder.write_json("adapt_table.json", {"rows": rows})
    return table
