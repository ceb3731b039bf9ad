"""How prediction rows are written: JSON lines, or a CSV / TSV table when the output file's name says so (as Ludwig
and AutoTrain do), so a spreadsheet or a join reads them back. And how a row is joined to the user's own columns.

A table has one header, taken from the first row: every row of one model has the same fields (the kept columns,
then the prediction), so it fits. A nested field is spread over columns (`probabilities.positive`); a list (the
labels of a multi-label prediction) is written as JSON text. A TSV is written as the readers read one, without
quoting: a tab or line break inside a value becomes a space.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from nlp_transfer.use.inputs import FileColumns, Source

TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}


def output_format(out: Path | None) -> str:
    """'csv' or 'tsv' when the output file's extension says so; JSON lines otherwise (stdout too)."""
    suffix = out.suffix.lower() if out is not None else ""
    return suffix.lstrip(".") if suffix in TABLE_DELIMITERS else "jsonl"


def row_writer(handle: IO[str], fmt: str) -> Callable[[dict[str, Any]], None]:
    """write(row) for the format: one JSON line per row, or a header then one table line per row."""
    if fmt == "jsonl":

        def write_line(row: dict[str, Any]) -> None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

        return write_line
    writer = csv.writer(handle, lineterminator="\n")
    put: Callable[[list[Any]], Any] = (
        (lambda cells: handle.write("\t".join(map(_tsv_cell, cells)) + "\n")) if fmt == "tsv" else writer.writerow
    )
    header: list[str] = []

    def write(row: dict[str, Any]) -> None:
        flat = flattened(row)
        if not header:
            header.extend(flat)
            put(header)
        put(["" if flat.get(name) is None else flat[name] for name in header])

    return write


def flattened(row: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting spread over `field.key` columns; lists and deeper values as JSON text."""
    flat: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                flat[f"{name}.{key}"] = _scalar(inner)
        else:
            flat[name] = _scalar(value)
    return flat


def joined(source: Source, prediction: dict[str, Any], columns: FileColumns) -> dict[str, Any]:
    """The user's kept columns, then the prediction. A kept column that is the very input a field echoes (a `text`
    column read as the text) is written once; any other kept column named like a prediction field is written as
    `<name>_input`, so neither the user's value nor the prediction is lost."""
    row: dict[str, Any] = {}
    for name, value in source.items():
        if name not in prediction or columns.roles.get(name) == name:
            row[name] = value  # the echoed input keeps its place among the user's columns
        else:
            row[f"{name}_input"] = value
    return row | prediction


def _scalar(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _tsv_cell(value: Any) -> str:
    return " ".join(str(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "\n").split("\n"))
