"""Reading one data file (csv / tsv / json / jsonl / parquet / plain text / SQuAD JSON / CoNLL columns) or one hub
dataset split into a datasets.Dataset; every failure is a UserError that names the file and the recipe field (or the
command's option: ReadOptions.names) that fixes it."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import Asset, hub_offline
from nlp_transfer.data.diagnose import is_wide, looks_separated_by, ragged_row, shown, wide_bom

# What datasets (and pyarrow and pandas under it) raise for a file or dataset it cannot read: ArrowInvalid,
# pandas' ParserError and UnicodeDecodeError are ValueErrors; DatasetGenerationError and DatasetNotFoundError are
# DatasetsErrors; a file or network problem is an OSError.
READ_ERRORS = (ValueError, OSError, datasets.exceptions.DatasetsError)

# format -> (datasets builder, extra builder arguments). TSV is read without quote handling: GLUE-style TSVs
# contain bare quote characters.
BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "csv": ("csv", {}),
    "tsv": ("csv", {"sep": "\t", "quoting": 3}),
    "json": ("json", {}),
    "jsonl": ("json", {}),
    "parquet": ("parquet", {}),
    "text": ("text", {}),
}
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
    ".conll": "conll",
    ".bio": "conll",
    ".iob": "conll",
}
TEXT_FORMATS = {"csv", "tsv", "json", "jsonl", "text"}


# How a user sets each reading option: recipe fields by default; commands that read a file pass their options.
RECIPE_NAMES: Mapping[str, str] = {
    "format": "data.format",
    "encoding": "data.encoding",
    "columns": "data.columns",
    "delimiter": "data.delimiter",
}

# ... and how commands that read a file the user names (evaluate, cluster) set them.
COMMAND_NAMES: Mapping[str, str] = {
    "format": "the file's extension",
    "encoding": "--encoding",
    "columns": "--columns",
    "delimiter": "--delimiter",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a local file: its format (never auto here), encoding, names for a header-less csv/tsv, and the
    csv/tsv field delimiter (None: ',' for csv, tab for tsv)."""

    format: str
    encoding: str = "utf-8"
    columns: list[str] | None = None
    delimiter: str | None = None
    names: Mapping[str, str] = field(default_factory=lambda: RECIPE_NAMES)  # for messages: how each is set


def file_format(path: Path, declared: str) -> str:
    """The declared format, or (auto) the one the extension says; anything unknown is plain text."""
    return declared if declared != "auto" else SUFFIX_FORMATS.get(path.suffix.lower(), "text")


def read_local(path: Path, options: ReadOptions, field: str) -> datasets.Dataset:
    if path.is_dir():
        raise UserError(f"{field}: {path} is a folder; name the data file inside it (e.g. {path}/train.csv)")
    fmt = options.format
    encoding, text = options.encoding, ""
    if fmt == "label_first":
        return read_label_first(read_text(path, options.encoding, field, options.names)[0], path, field)
    if fmt == "conll":
        return read_conll(read_text(path, options.encoding, field, options.names)[0], path, field)
    if fmt in TEXT_FORMATS:
        text, encoding = read_text(path, options.encoding, field, options.names)
        # datasets fails on a file without rows with a message that names neither the file nor the fix.
        header_rows = 1 if fmt in {"csv", "tsv"} and options.columns is None else 0
        lines = list(islice((line for line in text.splitlines() if line.strip()), header_rows + 1))
        if len(lines) <= header_rows:
            what = "has a header row but no data rows" if lines else "is empty (no lines)"
            raise UserError(f"{field}: {path} {what}; point {field} at a file with rows")
        if fmt in {"csv", "tsv"} and options.columns is not None:
            _check_named_fields(lines[0], fmt, path, options, field)
        if fmt == "json" and (squad := read_squad_json(text, path, field)) is not None:
            return squad
    builder, defaults = BUILDERS[fmt]
    arguments = dict(defaults)
    if fmt in TEXT_FORMATS:
        arguments["encoding"] = encoding
    if options.columns is not None:
        arguments["column_names"] = options.columns
    if options.delimiter is not None:
        arguments["sep"] = options.delimiter
    try:
        dataset = datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **arguments)
    except READ_ERRORS as err:  # a malformed file; anything else is a bug and reported as one
        if fmt in {"csv", "tsv"}:
            _explain_csv(text, path, options, arguments, field)
        raise UserError(
            f"{field}: could not read {path} as {fmt} ({_root_cause(err)}); check the file, or set "
            f"{options.names['format']} if it is not {fmt}"
        ) from err
    named = [name for name in dataset.column_names if not name.startswith("__index_level_")]
    if fmt in {"csv", "tsv"} and (len(named) == 1 or len(named) < len(dataset.column_names)):
        _explain_delimiter(text, path, arguments, options, field)
    if len(named) < len(dataset.column_names):
        # pandas takes the surplus leading fields as an index and shifts every column: refuse, never misread.
        given = options.names["columns"] if options.columns is not None else "the header row"
        raise UserError(
            f"{field}: {path} rows have {len(dataset.column_names)} fields but {given} names {len(named)} "
            f"({', '.join(named)}); name all {len(dataset.column_names)} columns"
        )
    return dataset


def _check_named_fields(line: str, fmt: str, path: Path, options: ReadOptions, field: str) -> None:
    """Names for a header-less csv/tsv must match the fields of its first line: surplus names would be read as
    empty columns (a label column of nothing), too few shift every column."""
    delimiter = options.delimiter or ("\t" if fmt == "tsv" else ",")
    tsv = fmt == "tsv"  # read without quote handling, as the tsv builder does
    fields = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL), [])
    names = options.columns or []
    if len(names) > len(fields):
        raise UserError(
            f"{field}: {options.names['columns']} names {len(names)} columns ({', '.join(names)}) but the lines of "
            f"{path} have {len(fields)} fields; give {len(fields)} names"
        )


def read_label_first(text: str, path: Path, field: str) -> datasets.Dataset:
    """`LABEL text` lines (TREC's `DESC:manner How did ...`, fastText's `__label__pos great film`): the first
    whitespace-separated token is the label, the rest of the line the text; columns `label` and `text`."""
    rows: dict[str, list[str]] = {"label": [], "text": []}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) < 2:
            raise UserError(f"{field}: {path} line {number} has a label but no text; label_first lines are LABEL text")
        rows["label"].append(parts[0])
        rows["text"].append(parts[1])
    if not rows["label"]:
        raise UserError(f"{field}: {path} is empty; point {field} at a file with rows")
    return datasets.Dataset.from_dict(rows)


DOCSTART = "-DOCSTART-"


def read_conll(text: str, path: Path, field: str) -> datasets.Dataset:
    """CoNLL-style column files: one word per line, its tags in further columns (tab- or space-separated), a blank
    line between sentences, `-DOCSTART-` lines skipped. Columns: `tokens` (the first), `tags` (the last),
    `column_1` ... (every column after the words, for another tag column), and `line` (where each sentence starts,
    for messages)."""
    sentences: list[list[list[str]]] = []
    starts: list[int] = []
    current: list[list[str]] = []
    width = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.split()[0] == DOCSTART:
            if current:
                sentences.append(current)
                current = []
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) < 2:
            raise UserError(
                f"{field}: {path} line {number} has a word but no tag ({line[:40]!r}); CoNLL lines are "
                "WORD<TAB>TAG (a file with no tag column cannot train a tagger)"
            )
        if width and len(fields) != width:
            raise UserError(
                f"{field}: {path} line {number} has {len(fields)} columns but the lines before it have {width}; "
                "give every word line the same columns"
            )
        width = width or len(fields)
        if not current:
            starts.append(number)
        current.append(fields)
    if current:
        sentences.append(current)
    if not sentences:
        raise UserError(f"{field}: {path} has no sentences; point {field} at a CoNLL file with WORD<TAB>TAG lines")
    rows: dict[str, list[Any]] = {"tokens": [[w[0] for w in s] for s in sentences]}
    for column in range(1, width):
        rows[f"column_{column}"] = [[w[column] for w in s] for s in sentences]
    rows["tags"] = rows[f"column_{width - 1}"]
    rows["line"] = starts
    return datasets.Dataset.from_dict(rows)


SQUAD_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.Sequence(datasets.Value("string")),
            "answer_start": datasets.Sequence(datasets.Value("int32")),
        },
    }
)


def read_squad_json(text: str, path: Path, field: str) -> datasets.Dataset | None:
    """SQuAD's nested JSON (data -> paragraphs -> qas) as one row per question, in the hub `squad` layout.

    None when the file is not SQuAD-shaped (a flat JSON list, or JSON lines), so the plain json reader takes it.
    SQuAD v2's unanswerable questions (is_impossible) get an empty answers list.
    """
    try:
        document = json.loads(text)
    except ValueError:
        return None  # JSON lines or not JSON at all: the json builder reports it
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        return None
    rows: dict[str, list[Any]] = {name: [] for name in SQUAD_FEATURES}
    try:
        for article in document["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                    row = {
                        "id": str(qa.get("id", len(rows["id"]))),
                        "title": str(article.get("title", "")),
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [a["text"] for a in answers],
                            "answer_start": [int(a["answer_start"]) for a in answers],
                        },
                    }
                    for name, value in row.items():  # appended only once the whole row reads
                        rows[name].append(value)
    except (KeyError, TypeError, ValueError) as err:
        where = f"question {len(rows['id']) + 1}"
        raise UserError(
            f"{field}: {path} looks like SQuAD JSON (data -> paragraphs -> qas) but {where} is malformed "
            f"({type(err).__name__}: {err}); each qa needs question, id and answers [{{text, answer_start}}]"
        ) from err
    return datasets.Dataset.from_dict(rows, features=SQUAD_FEATURES)


def read_hub(asset: Asset, hub_split: str, config: str | None, field: str) -> datasets.Dataset:
    try:
        dataset = datasets.load_dataset(asset.location, config, split=hub_split)
    except READ_ERRORS as err:  # offline, unknown id, unknown split or config (DatasetNotFoundError, ...)
        mode = "offline mode (HF_HUB_OFFLINE=1) is on and it is not cached" if hub_offline() else str(err)
        raise UserError(
            f"{field}: hub dataset '{asset.location}' (split '{hub_split}') could not be loaded: "
            f"{mode.splitlines()[0] if mode else type(err).__name__}. Fix: use a local file, or go online"
        ) from err
    if not isinstance(dataset, datasets.Dataset):
        raise UserError(f"{field}: hub dataset '{asset.location}' did not give one split; set split")
    return dataset


def read_text(path: Path, encoding: str, field: str, names: Mapping[str, str] = RECIPE_NAMES) -> tuple[str, str]:
    """(the file's text, the encoding that reads it); fails with the line number instead of a decoder traceback from
    inside pandas or pyarrow. A UTF-8 byte-order mark is read as one (utf-8-sig), so it does not become part of the
    first column's name; a UTF-16/32 file read as anything else is named as such."""
    raw = path.read_bytes()
    try:
        wide = is_wide(encoding)
    except LookupError as err:
        raise UserError(f"{names['encoding']}: unknown encoding '{encoding}'; use e.g. utf-8 or latin-1") from err
    bom = wide_bom(raw)
    if bom is not None and not wide:
        what, codec = bom
        raise UserError(
            f"{field}: {path} is {what} (it starts with a {what} byte-order mark), not {encoding}; set "
            f"{names['encoding']} to {codec}, or save the file as UTF-8"
        )
    if codecs.lookup(encoding).name == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding), encoding
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(
            f"{field}: {path} line {line} is not valid {encoding} (byte 0x{raw[err.start]:02x}); "
            f"set {names['encoding']} to the file's encoding (e.g. latin-1)"
        ) from err


def _explain_csv(text: str, path: Path, options: ReadOptions, arguments: dict[str, Any], field: str) -> None:
    """A csv/tsv pandas refused: the line with too many fields, and the delimiter its lines look separated by."""
    delimiter = str(arguments.get("sep", ","))
    expected = len(options.columns) if options.columns is not None else None
    found = ragged_row(text, delimiter, quoted=arguments.get("quoting") != 3, expected=expected)
    if found is None:
        return
    line, fields, wanted = found
    header = options.names["columns"] if options.columns is not None else "the header row"
    other = looks_separated_by(text, delimiter)
    fix = (
        f"its lines look separated by {shown(other)}: set {options.names['delimiter']} to {shown(other)}"
        if other
        else f'quote the fields that contain {shown(delimiter)}, e.g. "good, but long" (or set '
        f"{options.names['delimiter']} if another character separates the fields)"
    )
    raise UserError(f"{field}: {path} line {line} has {fields} fields but {header} has {wanted}; {fix}")


def _explain_delimiter(text: str, path: Path, arguments: dict[str, Any], options: ReadOptions, field: str) -> None:
    """A csv/tsv read into one column (or shifted columns) whose lines another character splits evenly: a wrong
    delimiter, refused rather than misread."""
    delimiter = str(arguments.get("sep", ","))
    other = looks_separated_by(text, delimiter)
    if other is not None:
        raise UserError(
            f"{field}: {path} does not split into columns at {shown(delimiter)}, but its lines look separated by "
            f"{shown(other)}; set {options.names['delimiter']} to {shown(other)}"
        )


def _root_cause(err: BaseException) -> str:
    """The first line of the innermost error (datasets wraps pandas' and pyarrow's, which say what went wrong)."""
    for _ in range(10):  # a bounded walk: a chain can, rarely, loop
        inner = err.__cause__ or err.__context__
        if inner is None:
            break
        err = inner
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
