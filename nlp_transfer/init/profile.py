"""What `nlp-transfer init` learns from a data file before proposing a recipe: how to read it, its columns and what
each holds (long text, ids, a split marker, labels of some shape), and files beside it (dev/test splits, a labels
file, label names). Nothing is guessed silently: where two readings are plausible the caller asks by a flag."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import resolve_data_file
from nlp_transfer.data.loading import load_extra_split
from nlp_transfer.data.readers import COMMAND_NAMES, SUFFIX_FORMATS
from nlp_transfer.recipe import DataFile

SAMPLE = 2000  # rows inspected for column roles and text lengths (labels are counted over every row)
LABEL_HINTS = (
    "label",
    "labels",
    "target",
    "targets",
    "class",
    "category",
    "sentiment",
    "rating",
    "stars",
    "score",
    "emotion",
    "emotions",
    "topic",
    "tag",
    "tags",
    "y",
)
SPLIT_VALUES = {"train", "dev", "test", "val", "valid", "validation"}
NAMES_FILES = ("emotions.txt", "mapping.txt", "labels.txt", "classes.txt", "label_names.txt")


@dataclass
class Source:
    """How the file is read: what a recipe's data section says about it."""

    reference: str  # as the user named it (a path, or a name under the data root)
    path: Path
    format: str  # csv, tsv, json, jsonl, parquet, text, label_first
    encoding: str = "utf-8"
    columns: list[str] | None = None  # names for a header-less csv/tsv
    label_lines: str | None = None  # a plain-text file's labels, one per line, in another file
    class_of_file: str | None = None  # several plain-text files: this file's class


@dataclass
class Column:
    name: str
    kind: str  # text, id, split, list, number, string, empty
    mean_words: float = 0.0
    distinct: int = 0


@dataclass
class Profile:
    sources: list[Source]
    rows: datasets.Dataset  # every row of the file(s), as a run reads them
    columns: dict[str, Column] = field(default_factory=dict)


def read_source(reference: str, data_root: Path | None, options: Any) -> Source:
    """How to read one file: its format from the extension (plain text: label-first lines, or a labels file beside
    it), its encoding (utf-8, else latin-1), the column names a header-less csv/tsv needs."""
    asset = resolve_data_file(reference, data_root, Path.cwd(), field="DATA_FILE")
    path = Path(asset.location)
    if asset.source == "hub" or not path.is_file():
        raise UserError(f"DATA_FILE {reference}: not a file; init reads a local csv, tsv, json, jsonl, parquet or txt")
    raw = path.read_bytes()[: 1 << 20]
    encoding = options.encoding or _encoding_of(raw)
    fmt = SUFFIX_FORMATS.get(path.suffix.lower(), "text")
    if fmt == "text" and _tab_separated(raw.decode(encoding, "replace")):
        fmt = "tsv"  # UCI's sentence<TAB>label .txt files
    source = Source(reference, path, fmt, encoding, columns=options.columns)
    if fmt == "text":
        first_tokens = [line.split(maxsplit=1)[0] for line in raw.decode(encoding, "replace").splitlines()[:-1] if line]
        if first_tokens and len(set(first_tokens)) <= min(100, max(2, len(first_tokens) // 10)):
            source.format = "label_first"  # TREC's `DESC:manner How did ...`: few distinct first tokens
        else:
            source.label_lines = options.label_lines or _labels_beside(path, reference)
    return source


def _encoding_of(raw: bytes) -> str:
    """utf-8 when the start of the file reads as it, else latin-1 (which reads any bytes)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(raw) - 4:  # not only a character cut at the end of the sample
            return "latin-1"
    return "utf-8"


def _tab_separated(text: str) -> bool:
    """Every line (but a possibly cut last one) splits at tabs into the same two or more fields."""
    lines = [line for line in text.splitlines()[:-1] or text.splitlines() if line.strip()][:SAMPLE]
    counts = {line.count("\t") for line in lines}
    return bool(lines) and len(counts) == 1 and counts.pop() >= 1


def _labels_beside(path: Path, reference: str) -> str | None:
    """TweetEval keeps train_text.txt and train_labels.txt side by side."""
    for text_word, labels_word in (("text", "labels"), ("texts", "labels"), ("text", "label")):
        if text_word in path.stem:
            sibling = path.with_name(path.name.replace(text_word, labels_word, 1))
            if sibling.is_file():
                return str(Path(reference).with_name(sibling.name))
    return None


def read_rows(sources: list[Source], data_root: Path | None, delimiter: str | None = None) -> datasets.Dataset:
    files: list[str | DataFile] = []
    for source in sources:
        files.append(
            DataFile(
                path=source.reference,
                format=source.format,
                label=source.class_of_file,
                label_lines=source.label_lines,
            )
        )
    loaded = load_extra_split(
        files if len(files) > 1 else files[0],
        split="train",
        field="DATA_FILE",
        data_root=data_root,
        base_dir=Path.cwd(),
        columns=sources[0].columns,
        delimiter=delimiter,
        encoding=sources[0].encoding,
        names=COMMAND_NAMES,  # init's advice names its own options (--delimiter), not recipe fields
    )
    return loaded.splits["train"]


def headerless_names(source: Source, rows: datasets.Dataset) -> list[str] | None:
    """A csv/tsv read with its first row as the header, when that row looks like data (a sentence, a number): for
    two fields (UCI's sentence<TAB>label) the names text and label, the wordier one the text; for more, where two
    readings are plausible, a UserError asking for --columns. None when the file has a header row."""
    if source.format not in ("csv", "tsv") or source.columns is not None:
        return None
    names = rows.column_names
    if not any(len(name.split()) >= 4 or re.fullmatch(r"-?\d+([.,]\d+)*", name) for name in names):
        return None
    if len(names) == 2:
        return ["text", "label"] if len(names[0].split()) >= len(names[1].split()) else ["label", "text"]
    shown = ", ".join(repr(n[:40]) for n in names)
    raise UserError(
        f"DATA_FILE {source.reference}: it seems to have no header row (its first row reads {shown}); name its "
        f"{len(names)} columns with --columns, e.g. --columns {','.join(_suggested_names(len(names)))}"
    )


def _suggested_names(count: int) -> list[str]:
    return (["text", "label"] + [f"column{i}" for i in range(3, count + 1)])[:count]


def inspect_columns(rows: datasets.Dataset) -> dict[str, Column]:
    sample = rows.shuffle(seed=0).select(range(min(SAMPLE, len(rows))))
    found = {}
    for name in rows.column_names:
        found[name] = _kind(name, list(sample[name]), len(sample))
    return found


def _kind(name: str, values: list[Any], rows: int) -> Column:
    present = [v for v in values if v is not None and str(v).strip() != ""]
    if not present:
        return Column(name, "empty")
    if all(isinstance(v, list | tuple) for v in present):
        return Column(name, "list", distinct=len({json.dumps(v) for v in present}))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return Column(name, "number", distinct=len(set(present)))
    texts = [str(v) for v in present]
    distinct = len(set(texts))
    words = sum(len(t.split()) for t in texts) / len(texts)
    if {t.strip().lower() for t in texts} <= SPLIT_VALUES and distinct > 1:
        return Column(name, "split", words, distinct)
    if distinct == len(texts) and words <= 1.0 and len(texts) > 20:
        return Column(name, "id", words, distinct)
    if words >= 3.0 or (distinct > 0.5 * len(texts) and words > 1.5):
        return Column(name, "text", words, distinct)
    return Column(name, "string", words, distinct)


def companion(source: Source, split: str) -> str | None:
    """The file of another split beside this one (train.tsv -> dev.tsv / test.tsv), as a reference."""
    words = {"eval": ("dev", "val", "valid", "validation"), "test": ("test",)}[split]
    stem = source.path.name
    if "train" not in stem:
        return None
    for word in words:
        sibling = source.path.with_name(stem.replace("train", word, 1))
        if sibling.is_file() and sibling != source.path:
            return str(Path(source.reference).with_name(sibling.name))
    return None


def names_file(source: Source, needed: int) -> str | None:
    """A label-names file beside the data (GoEmotions' emotions.txt, TweetEval's mapping.txt) with at least
    `needed` names: the ids in the data then get their names."""
    for name in NAMES_FILES:
        path = source.path.with_name(name)
        if path.is_file():
            lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            if len(lines) >= needed:
                return str(Path(source.reference).with_name(name))
    return None


def label_counts(values: list[Any]) -> Counter[str]:
    return Counter(str(v).strip() for v in values if v is not None and str(v).strip() != "")
