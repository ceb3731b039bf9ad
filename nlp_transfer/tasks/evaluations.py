"""What a task's `evaluate` (nlp-transfer evaluate: a trained model on a labelled file) works with, and the checks
the text tasks share. The share room reads the file and opens the model; the task checks the columns, reads the
gold labels by the rules training used and scores the model's outputs with the functions its own evaluation uses,
so a run's own eval file reproduces the run's eval metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.tasks.text_rows import has_texts


@dataclass
class Evaluation:
    """The labelled rows and `where` they came from (for messages), the user's column options (--text, --text-pair,
    --label), the model's task as trained (the recipe's section, and `settings` with what it resolved from the
    data), and, opened only once the columns are checked, its predictor and its train.extra_metrics."""

    rows: Any
    where: str
    options: Any
    recipe_task: dict[str, Any]
    settings: dict[str, Any]
    origin: str
    folder: Path  # the model's folder: its records (thresholds.json)
    predictor: Callable[[], Any]  # the share half for the task's kind of input (model loaded on the chosen device)
    extra_metrics: Callable[[], list[Any]] = list
    resolved: dict[str, Any] = field(default_factory=dict)  # task.json: class weights, positive weights, ...


def column(rows: Any, wanted: str, option: str, where: str, suggest: bool = False) -> str:
    """`wanted`, a column of the rows, or a UserError naming the option that names another."""
    if wanted not in rows.column_names:
        hint = did_you_mean(wanted, rows.column_names) if suggest else ""
        raise UserError(
            f"{where}: no column '{wanted}'{hint}; the columns are {', '.join(rows.column_names)}. Name the right one "
            f"with {option} (or --columns for a file without a header row)"
        )
    return wanted


def check_text_options(settings: dict[str, Any], origin: str, options: Any) -> None:
    """An option the model cannot use is refused, never ignored: a single-text model has no second text, and a
    model of several label columns cannot take one --label."""
    if options.text_pair is not None and not settings.get("text_pair"):
        raise UserError(
            f"evaluate --text-pair: {origin} reads single texts (it was trained without a second text), so a second "
            "text column does not apply; drop --text-pair"
        )
    labels = settings.get("label")
    if options.label is not None and isinstance(labels, list):
        raise UserError(
            f"evaluate --label: {origin} reads {len(labels)} label columns ({', '.join(map(str, labels))}) and "
            "--label names one; give a file with those columns and drop --label"
        )


def usable_texts(rows: Any, options: Any, task: Any, where: str) -> tuple[Any, list[str], list[str] | None, int]:
    """(rows with a usable text, texts, pair texts, skipped)."""
    text = column(rows, options.text or task.text, "--text", where)
    pair_name = options.text_pair or task.text_pair
    pair = column(rows, pair_name, "--text-pair", where) if pair_name else None
    fields = rows.select_columns([c for c in (text, pair) if c]).to_dict()
    usable = [i for i in range(len(rows)) if has_texts(SimpleNamespace(text=text, text_pair=pair), fields, i)]
    if not usable:
        raise UserError(f"{where}: no usable rows (every text is empty)")
    kept = rows.select(usable) if len(usable) < len(rows) else rows
    return kept, [str(t) for t in kept[text]], [str(t) for t in kept[pair]] if pair else None, len(rows) - len(usable)


def finite(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
