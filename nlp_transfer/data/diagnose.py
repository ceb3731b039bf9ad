"""Why a text data file did not read as it should, said in terms of the file: its byte-order mark, the line of a
csv row with too many fields, the character its fields are really separated by.

pandas and pyarrow report these as "An error occurred while generating the dataset" or, worse, read a
semicolon-separated file as one column; these helpers look at the text itself to name the line and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io

# Byte-order marks of the encodings a utf-8 (or latin-1) reader cannot read, longest first (UTF-32 LE starts with
# UTF-16 LE's mark): what the file is, and the encoding name that reads it.
WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
)
DELIMITERS = (",", ";", "\t", "|")  # the separators people actually use, in the order they are tried
SNIFF_LINES = 20


def wide_bom(raw: bytes) -> tuple[str, str] | None:
    """(what, encoding) when `raw` starts with a UTF-16 or UTF-32 byte-order mark, e.g. ("UTF-16", "utf-16")."""
    return next(((what, codec) for mark, what, codec in WIDE_BOMS if raw.startswith(mark)), None)


def is_wide(encoding: str) -> bool:
    return codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def shown(delimiter: str) -> str:
    """A delimiter as a user writes it in YAML or on the command line."""
    return '"\\t"' if delimiter == "\t" else repr(delimiter)


def looks_separated_by(text: str, current: str) -> str | None:
    """Another delimiter that splits each of the first lines into the same number (at least 2) of fields, when
    `current` does not; None when nothing fits better. (Counting characters ignores quoting: a hint, not a parse.)"""
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines or _splits_evenly(lines, current):
        return None
    return next((c for c in DELIMITERS if c != current and _splits_evenly(lines, c)), None)


def _splits_evenly(lines: list[str], delimiter: str) -> bool:
    counts = {line.count(delimiter) for line in lines}
    return len(counts) == 1 and counts.pop() >= 1


def ragged_row(text: str, delimiter: str, quoted: bool, expected: int | None) -> tuple[int, int, int] | None:
    """(line number, fields, expected fields) of the first row with more fields than the header row (or than
    `expected` names): the row pandas refuses. Rows with fewer fields read as missing values, so they are not it."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
    try:
        for row in reader:
            if not row:
                continue  # a blank line: pandas skips it too
            if expected is None:
                expected = len(row)
            elif len(row) > expected:
                return reader.line_num, len(row), expected
    except csv.Error:
        return None  # e.g. an unterminated quote: the reader's own message is the better one
    return None
