"""Reading one data file (csv / tsv / json / jsonl / parquet / plain text / SQuAD JSON) or one hub dataset split
into a datasets.Dataset; every failure is a UserError that names the file and the recipe field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import Asset, hub_offline

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
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_FORMATS = {"csv", "tsv", "json", "jsonl", "text"}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a local file: its format (never auto here), encoding, and names for a header-less csv/tsv."""

    format: str
    encoding: str = "utf-8"
    columns: list[str] | None = None


def file_format(path: Path, declared: str) -> str:
    """The declared format, or (auto) the one the extension says; anything unknown is plain text."""
    return declared if declared != "auto" else SUFFIX_FORMATS.get(path.suffix.lower(), "text")


def read_local(path: Path, options: ReadOptions, field: str) -> datasets.Dataset:
    if path.is_dir():
        raise UserError(f"{field}: {path} is a folder; name the data file inside it (e.g. {path}/train.csv)")
    fmt = options.format
    if fmt == "label_first":
        return read_label_first(check_encoding(path, options.encoding, field), path, field)
    if fmt in TEXT_FORMATS:
        text = check_encoding(path, options.encoding, field)
        # datasets fails on a file without rows with a message that names neither the file nor the fix.
        header_rows = 1 if fmt in {"csv", "tsv"} and options.columns is None else 0
        if len(list(islice((line for line in text.splitlines() if line.strip()), header_rows + 1))) <= header_rows:
            what = "has a header row but no data rows" if header_rows else "is empty"
            raise UserError(f"{field}: {path} {what}; point {field} at a file with rows")
        if fmt == "json" and (squad := read_squad_json(text, path, field)) is not None:
            return squad
    builder, defaults = BUILDERS[fmt]
    arguments = dict(defaults)
    if fmt in TEXT_FORMATS:
        arguments["encoding"] = options.encoding
    if options.columns is not None:
        arguments["column_names"] = options.columns
    try:
        dataset = datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **arguments)
    except Exception as err:  # datasets/pyarrow/pandas raise many types for a malformed file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{field}: could not read {path} as {fmt} ({reason}); check the file or set data.format"
        ) from err
    named = [name for name in dataset.column_names if not name.startswith("__index_level_")]
    if len(named) < len(dataset.column_names):
        # pandas takes the surplus leading fields as an index and shifts every column: refuse, never misread.
        given = "data.columns" if options.columns is not None else "the header row"
        raise UserError(
            f"{field}: {path} rows have {len(dataset.column_names)} fields but {given} names {len(named)} "
            f"({', '.join(named)}); name all {len(dataset.column_names)} columns"
        )
    return dataset


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
    except Exception as err:  # offline, unknown id, unknown split or config: all surface as different types
        mode = "offline mode (HF_HUB_OFFLINE=1) is on and it is not cached" if hub_offline() else str(err)
        raise UserError(
            f"{field}: hub dataset '{asset.location}' (split '{hub_split}') could not be loaded: "
            f"{mode.splitlines()[0] if mode else type(err).__name__}. Fix: use a local file, or go online"
        ) from err
    if not isinstance(dataset, datasets.Dataset):
        raise UserError(f"{field}: hub dataset '{asset.location}' did not give one split; set split")
    return dataset


def check_encoding(path: Path, encoding: str, field: str) -> str:
    """The file's text; fails with the line number instead of a decoder traceback from inside pandas or pyarrow."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except LookupError as err:
        raise UserError(f"data.encoding: unknown encoding '{encoding}'; use e.g. utf-8 or latin-1") from err
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(
            f"{field}: {path} line {line} is not valid {encoding} (byte 0x{raw[err.start]:02x}); "
            "set data.encoding to the file's encoding (e.g. latin-1)"
        ) from err
