"""What `predict` reads: inputs given on the command line and the rows of --file, as one stream of input dicts.

A task's predictor says which fields an input has (its roles, e.g. text and text_pair, or question and context)
and which file column each is read from by default (the columns the model was trained on); the command line may
name others (--text, --text-pair). The file is read row by row (data.stream), so a million lines take no more
memory than ten, and it is read twice: once to check every row before any prediction is made (a bad row found
after hours of predicting would leave half a result) and to count them for the progress bar, then to predict.

A file's own columns travel with its rows (all of them, or those named with --keep), so the predictions can be
joined back to the user's data; they are matched once, against the first row (a header, or a JSON object's keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.data.stream import StreamOptions, check_stream, stream_rows

Item = dict[str, Any]  # one input: its roles (e.g. text, text_pair, or question and context) as strings
Source = dict[str, Any]  # the file columns kept beside an input's prediction ({} for inputs given as arguments)


@dataclass
class PredictInputs:
    """What the user passed to `nlp-transfer predict`; each task's predictor takes what it reads."""

    texts: list[str]
    file: Path | None = None
    question: str | None = None
    context: str | None = None
    text_pairs: list[str] = field(default_factory=list)  # --text-pair: second texts, or with --file its column
    text_column: str | None = None  # --text: the file's text column
    keep: list[str] | None = None  # --keep: the file columns written beside each prediction (None: all of them)
    tokens: bool = False  # --tokens: the inputs are pre-split words (token classification)
    aggregation: str = "first"  # --aggregation: how a word's sub-words become its tag (token classification)
    stream: StreamOptions = field(default_factory=StreamOptions)


@dataclass(frozen=True)
class Role:
    """An input field a task reads from a file: the column (chosen or default) and the option that names it."""

    column: str
    option: str  # e.g. --text; for the error message that says how to name another column
    chosen: bool = False  # named on the command line (no fallback to a `text` column)


class InputSide(Protocol):
    """A predictor's input side: what it reads and how one input is checked and sized. Text tasks share one
    (text_items.TextItems), QA has its own (question_items.QuestionItems); predictors add only batch -> rows."""

    def roles(self, given: PredictInputs) -> dict[str, Role]:
        """The input fields read from a --file, and the column each comes from."""
        ...

    def from_arguments(self, given: PredictInputs) -> list[Item]:
        """The inputs given on the command line (a UserError for options that do not fit the task)."""
        ...

    def check(self, item: Item, where: str) -> None:
        """One input, before any prediction: a UserError naming `where` if it cannot be predicted."""
        ...

    def length(self, item: Item) -> int:
        """Roughly how long the input is (characters): batches are made of inputs of similar length."""
        ...


@dataclass
class FileColumns:
    """How a file's first row was matched: the column each role is read from, and the columns kept."""

    roles: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    """The validated inputs: how many, the file's matched columns, and a fresh stream of (where, item, source)
    each time it is called (source: the kept columns of the input's file row)."""

    count: int
    stream: Callable[[], Iterator[tuple[str, Item, Source]]]
    columns: FileColumns = field(default_factory=FileColumns)


def validated_inputs(
    arguments: list[Item],
    file: Path | None,
    roles: dict[str, Role],
    options: StreamOptions,
    check: Callable[[Item, str], None],
    keep: list[str] | None = None,
) -> Inputs:
    """Command-line inputs, then the file's rows: every one checked (`check` raises UserError) and counted first."""
    if file is not None:
        check_stream(file, options, "--file")
    else:
        for option, value in (("--keep", keep), ("--columns", options.columns), ("--delimiter", options.delimiter)):
            if value is not None:
                raise UserError(
                    f"predict {option}: it is about the columns of a --file; give a --file or drop {option}"
                )
    columns = matched_columns(file, roles, options, keep) if file is not None else FileColumns()

    def stream() -> Iterator[tuple[str, Item, Source]]:
        for number, item in enumerate(arguments, start=1):
            yield f"argument {number}", item, dict.fromkeys(columns.kept)  # the same fields as a file row's
        if file is not None:
            yield from file_items(file, options, columns)

    count = 0
    for where, item, _ in stream():
        check(item, where)
        count += 1
    if count == 0:
        what = f"--file {file} has no rows" if file is not None else "no inputs given"
        raise UserError(f"predict: {what}; give texts as arguments or a --file with rows")
    return Inputs(count, stream, columns)


def matched_columns(path: Path, roles: dict[str, Role], options: StreamOptions, keep: list[str] | None) -> FileColumns:
    """The columns of the file's first row (a header, or a JSON object's keys) each role is read from, and kept."""
    rows = stream_rows(path, options, "--file")
    try:
        first = next(rows, None)
    finally:
        rows.close()
    if first is None:
        return FileColumns()  # no rows: counted and refused as such
    _, row = first
    found = {role: _column(path, row, role, wanted) for role, wanted in roles.items()}
    return FileColumns(found, list(row) if keep is None else [_kept(path, row, name) for name in dict.fromkeys(keep)])


def file_items(path: Path, options: StreamOptions, columns: FileColumns) -> Iterator[tuple[str, Item, Source]]:
    """(where, item, source) per row, read through the columns matched against the first row."""
    for number, row in stream_rows(path, options, "--file"):
        where = f"--file {path} line {number}"
        item: Item = {}
        for role, column in columns.roles.items():
            value = row.get(column)
            if value is None:
                raise UserError(f"{where}: no value in column '{column}' (the {role}); fill it in or drop the row")
            item[role] = value if isinstance(value, list) else str(value)  # a sentence's words stay a list
        yield where, item, {name: row.get(name) for name in columns.kept}


def _kept(path: Path, row: Item, name: str) -> str:
    if name in row:
        return name
    return _refuse(
        f"--keep {name}: {path} has no column '{name}'{did_you_mean(name, list(row))}; the columns are {', '.join(row)}"
    )


def _column(path: Path, row: Item, role: str, wanted: Role) -> str:
    found = list(row)
    if wanted.column in row:
        return wanted.column
    if role == "text" and not wanted.chosen and "text" in row:
        return "text"  # a file with a `text` column, whatever the training data called it
    hint = (
        f"; {path} holds one text per line: put the pairs in a csv, tsv or jsonl file with both columns"
        if found == ["text"]
        else f"; name the right one with {wanted.option}"
        + (" (or --columns for a csv/tsv without a header row)" if path.suffix.lower() in {".csv", ".tsv"} else "")
    )
    return _refuse(
        f"--file {path}: no column '{wanted.column}' for the {role}{did_you_mean(wanted.column, found)}; "
        f"the columns are {', '.join(found)}{hint}"
    )


def _refuse(message: str) -> str:
    raise UserError(message)
