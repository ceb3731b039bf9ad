"""Rows of a local file, one at a time, in file order: what `predict --file` reads, in constant memory however long
the file (a million lines). The formats and column rules are those of a recipe's data files (readers.py): csv/tsv
with a header row or names given for a header-less file, any delimiter, TSV without quote handling; JSON lines;
JSON (a list of objects, or SQuAD's nested layout, read whole); anything else is plain text, one text per line in
a column named `text` (blank lines skipped).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.diagnose import is_wide, wide_bom
from nlp_transfer.data.readers import SUFFIX_FORMATS, read_squad_json

STREAMED_FORMATS = ("csv", "tsv", "jsonl", "json", "text", "conll")


@dataclass(frozen=True)
class StreamOptions:
    """How to read the file: its format (auto: from the extension), encoding, names for a header-less csv/tsv and
    the field delimiter of a csv/tsv (default , and tab)."""

    format: str = "auto"
    encoding: str = "utf-8"
    columns: list[str] | None = None
    delimiter: str | None = None


def stream_format(path: Path, declared: str = "auto") -> str:
    fmt = declared if declared != "auto" else SUFFIX_FORMATS.get(path.suffix.lower(), "text")
    if fmt not in STREAMED_FORMATS:
        raise UserError(f"{path}: {fmt} files cannot be read row by row; convert it to csv, tsv or jsonl")
    return fmt


def check_stream(path: Path, options: StreamOptions, field: str) -> str:
    """The file's format, after checking the file and the options fit it (before any row is read)."""
    if path.is_dir():
        raise UserError(f"{field} {path}: is a folder; pass a file (csv, tsv, jsonl, json or one text per line)")
    if not path.is_file():
        raise UserError(f"{field} {path}: not found; pass a csv, tsv, jsonl, json or text file")
    fmt = stream_format(path, options.format)
    if options.columns is not None and fmt not in {"csv", "tsv"}:
        raise UserError(f"--columns names the columns of a header-less csv/tsv, but {path} is {fmt}; drop --columns")
    if options.delimiter is not None:
        if fmt not in {"csv", "tsv"}:
            raise UserError(f"--delimiter is for csv/tsv files, but {path} is {fmt}; drop --delimiter")
        if len(options.delimiter) != 1:
            raise UserError(f"--delimiter {options.delimiter!r}: give one character, e.g. ';' or '|'")
    return fmt


def stream_rows(path: Path, options: StreamOptions, field: str) -> Generator[tuple[int, dict[str, Any]], None, None]:
    """(line number, row) for every row of the file, in order; a malformed row is a UserError naming its line."""
    fmt = check_stream(path, options, field)
    encoding = _encoding_of(path, options.encoding, field)
    try:
        with path.open(encoding=encoding, newline="" if fmt in {"csv", "tsv"} else None) as handle:
            yield from READERS[fmt](handle, path, options, field)
    except LookupError as err:
        raise UserError(f"--encoding {options.encoding}: unknown encoding; use e.g. utf-8 or latin-1") from err
    except UnicodeDecodeError as err:
        raise UserError(
            f"{field} {path}: not valid {options.encoding} ({err.reason} at byte {err.start} of a read block); "
            "convert the file to utf-8"
        ) from err


def _encoding_of(path: Path, encoding: str, field: str) -> str:
    """The encoding to open the file with, from its first bytes as readers.read_text does: a UTF-8 byte-order mark
    is read as one (not left in the first column's name); a UTF-16/32 file read as anything else is named as such."""
    try:
        wide = is_wide(encoding)
    except LookupError as err:
        raise UserError(f"--encoding {encoding}: unknown encoding; use e.g. utf-8 or latin-1") from err
    with path.open("rb") as handle:
        start = handle.read(4)
    bom = wide_bom(start)
    if bom is not None and not wide:
        what, codec = bom
        raise UserError(
            f"{field} {path} is {what} (it starts with a {what} byte-order mark), not {encoding}; pass --encoding "
            f"{codec}, or save the file as UTF-8"
        )
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" and start.startswith(codecs.BOM_UTF8) else encoding


def _text_rows(handle: Any, path: Path, options: StreamOptions, field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        text = line.rstrip("\r\n")
        if text.strip():
            yield number, {"text": text}


def _jsonl_rows(handle: Any, path: Path, options: StreamOptions, field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise UserError(f"{field} {path} line {number}: not JSON ({err}); write one JSON object per line") from err
        if not isinstance(row, dict):
            raise UserError(f"{field} {path} line {number}: expected a JSON object, found {type(row).__name__}")
        yield number, row


def _json_rows(handle: Any, path: Path, options: StreamOptions, field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    text = handle.read()
    squad = read_squad_json(text, path, f"{field} {path}")
    if squad is not None:
        for number, row in enumerate(squad, start=1):
            yield number, dict(row)
        return
    try:
        rows = json.loads(text)
    except ValueError as err:
        raise UserError(f"{field} {path}: not JSON ({err}); a .json file holds a list of objects") from err
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{field} {path}: expected a JSON list of objects (or JSON lines in a .jsonl file)")
    yield from enumerate(rows, start=1)


def _delimited_rows(
    handle: Any, path: Path, options: StreamOptions, field: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    tsv = stream_format(path, options.format) == "tsv"
    delimiter = options.delimiter or ("\t" if tsv else ",")
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a whole document in one field (default 128 kB)
    # TSV without quote handling, as the recipe readers do: GLUE-style TSVs hold bare quote characters.
    reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    names = options.columns
    for fields in reader:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if names is None:
            names = [name.strip() for name in fields]
            if len(set(names)) < len(names):
                raise UserError(f"{field} {path}: the header row repeats a column name ({', '.join(names)})")
            continue
        if len(fields) != len(names):
            given = "--columns" if options.columns is not None else "the header row"
            hint = "" if options.delimiter else " (another delimiter? pass --delimiter)"
            raise UserError(
                f"{field} {path} line {reader.line_num}: {len(fields)} fields, but {given} names {len(names)} "
                f"({', '.join(names)}){hint}"
            )
        yield reader.line_num, dict(zip(names, fields, strict=True))
    if names is None:
        raise UserError(f"{field} {path}: is empty; pass a file with rows")


def _conll_rows(handle: Any, path: Path, options: StreamOptions, field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """One row per sentence of a CoNLL column file (blank lines between sentences, -DOCSTART- skipped): its words
    (`tokens`, the first column) and, when the lines have more columns, its `tags` (the last)."""
    words: list[list[str]] = []
    start = 0
    for number, line in enumerate(handle, start=1):
        fields = line.strip().split("\t") if "\t" in line else line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                yield start, _sentence(words)
                words = []
            continue
        start = start if words else number
        words.append([f.strip() for f in fields])
    if words:
        yield start, _sentence(words)


def _sentence(words: list[list[str]]) -> dict[str, Any]:
    row: dict[str, Any] = {"tokens": [w[0] for w in words]}
    if all(len(w) > 1 for w in words):
        row["tags"] = [w[-1] for w in words]
    return row


READERS = {
    "conll": _conll_rows,
    "text": _text_rows,
    "jsonl": _jsonl_rows,
    "json": _json_rows,
    "csv": _delimited_rows,
    "tsv": _delimited_rows,
}
