"""What a model card says about each task, as one table (TASK_CARDS): a sentence on what the model does, and a
section on its outputs (class names; multi-label thresholds; the regression targets and how to undo their scale).
Read from the model folder's own files, like the rest of the card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.recipe import Recipe
from nlp_transfer.report.token_tags import token_outputs, token_what_it_does
from nlp_transfer.runfolder.folder import BASE_CONFIG_FILE, TASK_FILE, THRESHOLDS_FILE, label_names


@dataclass(frozen=True)
class TaskCard:
    what_it_does: Callable[[Any, list[str], Path], str]  # (task config, label names, folder) -> one paragraph
    outputs: Callable[[Any, list[str], Path], list[str]]  # -> the lines of its section ([] for none)


def _inputs(task: Any) -> str:
    return f"pairs of texts ({task.text}, {task.text_pair})" if task.text_pair else "a text"


def _long_texts(task: Any) -> str:
    if task.truncation == "windows":
        return (
            f" A text longer than {task.max_length} tokens is read in overlapping windows (stride {task.stride}) "
            f"whose outputs are {task.window_pooling}-pooled (`nlp-transfer predict` does this; a plain pipeline "
            "keeps only the first window)."
        )
    kept = {"head": "its start", "tail": "its end", "head_tail": "its start and its end"}[task.truncation]
    return f" A text longer than {task.max_length} tokens is cut to {kept}."


def _classification(task: Any, names: list[str], folder: Path) -> str:
    return (
        f"Text classification: it puts {_inputs(task)} into one of {len(names)} classes: {', '.join(names)}."
        + _long_texts(task)
    )


def _class_lines(task: Any, names: list[str], folder: Path) -> list[str]:
    weights = read_json_or_empty(folder / TASK_FILE).get("class_weights")
    lines = ["## Labels", *[f"- {i}: {name}" for i, name in enumerate(names)], ""]
    if weights:
        shown = ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=False))
        lines[-1:-1] = ["", f"Trained with class weights ({shown}), so rare classes count as much as common ones."]
    return lines


def _multi_label(task: Any, names: list[str], folder: Path) -> str:
    return (
        f"Multi-label classification: for {_inputs(task)} it gives each of {len(names)} labels its own probability "
        "(a sigmoid per label); every label whose probability reaches its threshold applies, so a text may have "
        "several labels or none." + _long_texts(task)
    )


def _threshold_lines(task: Any, names: list[str], folder: Path) -> list[str]:
    record = read_json_or_empty(folder / THRESHOLDS_FILE)
    thresholds = record.get("thresholds", {})
    how = {
        "per_label": "each label's own, tuned on the eval split for that label's F1",
        "global": "one for all labels, tuned on the eval split for macro-F1",
        "fixed": "fixed by the recipe",
    }.get(str(record.get("strategy")), "see thresholds.json")
    if record.get("shrinkage"):  # task.threshold_shrinkage: rare labels' thresholds moved towards the global one
        overall = _number(record.get("global_threshold"))
        how += f", pulled towards the global {overall} as if {_number(record['shrinkage'])} more positives voted for it"
    return [
        "## Labels and decision thresholds",
        f"A label applies when its probability is at least its threshold ({how}; `{THRESHOLDS_FILE}` holds them, "
        "and `nlp-transfer predict` applies them). A plain transformers pipeline gives the probabilities "
        "(`top_k=None`) and leaves the thresholds to you.",
        "",
        "| id | label | threshold |",
        "|---|---|---|",
        *[f"| {i} | {name} | {_number(thresholds.get(name))} |" for i, name in enumerate(names)],
        "",
    ]


def _regression(task: Any, names: list[str], folder: Path) -> str:
    what = f"a number, {names[0]}" if len(names) == 1 else f"{len(names)} numbers ({', '.join(names)})"
    return f"Regression: for {_inputs(task)} it predicts {what}." + _long_texts(task)


def _target_lines(task: Any, names: list[str], folder: Path) -> list[str]:
    config = read_json_or_empty(folder / "config.json") or read_json_or_empty(folder / BASE_CONFIG_FILE)
    mean, std = config.get("target_mean") or [], config.get("target_std") or []
    return [
        "## Targets",
        "The model's outputs are standardised: each target's value is `output x std + mean` with the training "
        "targets' mean and std below (also `target_mean` / `target_std` in config.json). `nlp-transfer predict` "
        "returns the values on their own scale; a plain transformers pipeline returns the raw outputs.",
        "",
        "| output | target | mean | std |",
        "|---|---|---|---|",
        *[
            f"| {i} | {name} | {_number(m)} | {_number(s)} |"
            for i, (name, m, s) in enumerate(zip(names, mean, std, strict=False))
        ],
        "",
    ]


def _qa(task: Any, names: list[str], folder: Path) -> str:
    resolved = read_json_or_empty(folder / TASK_FILE).get("unanswerable", task.unanswerable)
    none = " It may answer that the passage holds no answer." if resolved is True else ""
    return (
        "Extractive question answering: given a question and a passage, it returns the span of the passage that "
        f"answers the question.{none}"
    )


def _nothing(task: Any, names: list[str], folder: Path) -> list[str]:
    return []


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


TASK_CARDS = {
    "classification": TaskCard(_classification, _class_lines),
    "multi_label": TaskCard(_multi_label, _threshold_lines),
    "regression": TaskCard(_regression, _target_lines),
    "qa": TaskCard(_qa, _nothing),
    "token_classification": TaskCard(token_what_it_does, token_outputs),
}


def task_card_parts(recipe: Recipe, folder: Path) -> tuple[str, list[str]]:
    """(what the model does, the lines of its outputs section) for the card of the model in `folder`."""
    card = TASK_CARDS[recipe.task.name]
    names = label_names(folder) if recipe.task.name != "qa" else []
    return card.what_it_does(recipe.task, names, folder), card.outputs(recipe.task, names, folder)
