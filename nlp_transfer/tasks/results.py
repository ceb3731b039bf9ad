"""What a task says about a finished model, on plain data: the types its view of the eval predictions, its card
lines, its trivial baseline and its evaluation on a labelled file work with. Each task's module fills them in (the
Task protocol, base.py); the run room draws the figures through a Canvas (report.figures is one), writes the files and
places the results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nlp_transfer.tasks.evaluations import Evaluation
from nlp_transfer.tasks.text_inputs import DOCUMENT, document_ids
from nlp_transfer.tasks.text_rows import has_texts


@dataclass
class Figure:
    file: str  # in the run folder
    caption: str


@dataclass
class View:
    """What a task's view drew and found; `errors` the rows of errors.jsonl (None: the task writes none)."""

    figures: list[Figure] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None


class Canvas(Protocol):
    """The figures a view may draw, each saved as a PNG at `path` (the run room's figures module draws them)."""

    def confusion(self, gold: np.ndarray, predicted: np.ndarray, names: list[str], path: Path) -> Path: ...

    def calibration(
        self, confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = 10
    ) -> tuple[Path, float]: ...

    def bars(self, names: Sequence[str], values: Sequence[float], path: Path, *, title: str, ylabel: str) -> Path: ...

    def scatter(self, true: np.ndarray, predicted: np.ndarray, path: Path, *, title: str) -> Path: ...


@dataclass
class ViewInputs:
    """The last evaluation of the run: `captured` is what the task's metric saw (the predictions and labels of
    classification, the span metric object of QA); `tokenized` the eval split as the model read it."""

    folder: Path
    captured: Any
    tokenized: Any
    tokenizer: Any
    label_names: list[str]
    evaluation: dict[str, Any] = field(default_factory=dict)  # the eval metrics the run reports (eval_f1_<label>)
    model_settings: dict[str, Any] = field(default_factory=dict)  # config attributes (regression's target scale)
    source: EvalSource | None = None  # the user's eval rows, for errors.jsonl (None: decoded from the token ids)


@dataclass
class EvalSource:
    """The eval split as the user wrote it: `data` the run's LoadedData (its rows and where each came from),
    `task` the task's recipe section (which columns hold the texts and the label)."""

    data: Any
    task: Any

    def scored_rows(self, tokenized: Any) -> list[int]:
        """The eval rows the model was scored on, in scoring order: a text's windows (truncation: windows) are one
        text; rows without text or label were never scored."""
        documents = document_ids(tokenized)
        if documents is not None:
            return [int(d) for d in dict.fromkeys(documents)]  # a text's windows are consecutive, in text order
        rows = self.data.splits["eval"]
        batch = rows.select_columns([c for c in (self.task.text, self.task.text_pair, self.task.label) if c]).to_dict()
        return [i for i in range(len(rows)) if has_texts(self.task, batch, i) and _labelled(batch, self.task, i)]

    def text(self, index: int) -> dict[str, Any]:
        """Eval row `index` as the user wrote it: the text (and pair), the file and the row of that file."""
        row = self.data.splits["eval"][index]
        entry: dict[str, Any] = {"text": row[self.task.text]}
        if self.task.text_pair:
            entry["text_pair"] = row[self.task.text_pair]
        origin = self.data.origin("eval", index)
        return entry | ({"file": origin.source, "row": origin.row} if origin is not None else {})


def _labelled(batch: dict[str, list[Any]], task: Any, i: int) -> bool:
    value = batch[task.label][i]
    return value is not None and str(value).strip() != ""


@dataclass
class CardFacts:
    """What a model card reads about the model in a folder: the task's recipe section, the label names in id order,
    and the folder's own records (task.json, thresholds.json, the model's config), {} where absent."""

    task: Any
    label_names: list[str]
    resolved: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class TaskResults(Protocol):
    """A task's module of results (classification_report.py, ...): pure functions of plain data."""

    def baseline(self, prepared: Any) -> dict[str, Any]:
        """The trivial baseline a model must beat on the eval split (name and scores; {}: none worth stating)."""
        ...

    def view(self, inputs: ViewInputs, canvas: Canvas) -> View:
        """The task's figures and numbers of the last evaluation, and the rows of errors.jsonl if it keeps any."""
        ...

    def example(self, rows: Any, task: Any) -> dict[str, str] | None:
        """An input from the eval rows for the model card's usage example (None: the pipeline's generic one)."""
        ...

    def card_summary(self, facts: CardFacts) -> str:
        """What the model does, one paragraph of its model card."""
        ...

    def card_outputs(self, facts: CardFacts) -> list[str]:
        """The lines of the card's section on the model's outputs ([]: none)."""
        ...

    def check_options(self, settings: dict[str, Any], origin: str, options: Any) -> None:
        """`nlp-transfer evaluate`'s column options the model cannot use, refused before the file is read."""
        ...

    def evaluate(self, given: Evaluation) -> dict[str, Any]:
        """{rows, skipped, metrics} of the model on a labelled file: the metrics training reported."""
        ...

    def decision(self, row: dict[str, Any]) -> Any:
        """What a prediction row decides: equal for two models that agree (an int8 export against its float model,
        use/agreement.py). None: the task decides nothing discrete, only values are compared (regression)."""
        ...


def card_number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


def per_document(split: Any) -> list[Any]:
    """The labels of a tokenized split, one per text: windowed splits (truncation: windows) hold one row per window,
    and a text counts once however many windows it has."""
    labels = split["labels"]
    if DOCUMENT not in split.column_names:
        return list(labels)
    seen: dict[int, Any] = {}
    for document, label in zip(split[DOCUMENT], labels, strict=True):
        seen.setdefault(int(document), label)
    return list(seen.values())


def split_labels(prepared: Any, split: str) -> list[Any] | None:
    """The labels of a prepared split, one per text (None: no such split, or no labels)."""
    found = prepared.splits.get(split)
    if found is None or "labels" not in found.column_names:
        return None
    return per_document(found)


def no_baseline(prepared: Any) -> dict[str, Any]:
    """A task with no trivial baseline worth stating."""
    return {}


def no_example(rows: Any, task: Any) -> dict[str, str] | None:
    """A task whose card shows its pipeline's generic usage example."""
    return None
