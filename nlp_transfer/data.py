"""Load csv / tsv / json / jsonl / parquet / plain text / SQuAD JSON / hub datasets into one DatasetDict.

Column meaning (text, label) is the task's business; this module only reads rows, carves an eval split when none is
given, takes seeded subsets, and records a hash of every local file it read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import datasets

from nlp_transfer.assets import Asset, hub_offline, resolve_data_file
from nlp_transfer.errors import UserError
from nlp_transfer.recipe import DataSpec
from nlp_transfer.schema import DataFile, SplitSpec

# Recipe split name -> default split name of a hub dataset.
HUB_SPLITS = {"train": "train", "eval": "validation", "test": "test"}

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


@dataclass
class LoadedData:
    splits: datasets.DatasetDict
    sources: dict[str, list[str]]  # split -> the files or hub ids it came from
    file_hashes: dict[str, str] = field(default_factory=dict)  # local file -> sha256
    notes: list[str] = field(default_factory=list)  # what was done to the data, for the log and the card


def load_data(
    spec: DataSpec, *, label_column: str, seed: int, data_root: Path | None, base_dir: Path | None
) -> LoadedData:
    """Read every split the recipe names; hold out an eval split from train when none is given."""
    loaded = LoadedData(splits=datasets.DatasetDict(), sources={})
    for split in ("train", "eval", "test"):
        split_spec: SplitSpec | None = getattr(spec, split)
        if split_spec is None:
            continue
        _load_split(split_spec, split, f"data.{split}", spec, label_column, data_root, base_dir, loaded)

    if "eval" not in loaded.splits:
        held_out = loaded.splits["train"].train_test_split(test_size=spec.eval_fraction, seed=seed)
        loaded.splits["train"], loaded.splits["eval"] = held_out["train"], held_out["test"]
        loaded.notes.append(
            f"no data.eval: held out {len(held_out['test'])} training rows ({spec.eval_fraction:.0%}, seed {seed})"
        )
    limits = {"train": spec.max_train_samples, "eval": spec.max_eval_samples, "test": spec.max_test_samples}
    for split, limit in limits.items():
        if limit is not None and split in loaded.splits and len(loaded.splits[split]) > limit:
            total = len(loaded.splits[split])
            loaded.splits[split] = loaded.splits[split].shuffle(seed=seed).select(range(limit))
            loaded.notes.append(f"{split}: random subset of {limit} of {total} rows (seed {seed})")
    return loaded


def load_extra_split(
    split_spec: SplitSpec,
    *,
    split: str,
    field: str,
    data_root: Path | None,
    base_dir: Path | None,
    columns: list[str] | None = None,
) -> LoadedData:
    """A split named outside `data:` (adapt.target.corpus, adapt.target.test, the cluster corpus), read like
    data.<split> is; errors name `field`. The split name picks the hub dataset's default split; `columns` names the
    columns of a header-less csv/tsv."""
    loaded = LoadedData(splits=datasets.DatasetDict(), sources={})
    spec = DataSpec(train=split_spec, columns=columns)
    _load_split(split_spec, split, field, spec, "label", data_root, base_dir, loaded)
    return loaded


def _load_split(
    split_spec: SplitSpec,
    split: str,
    field: str,
    spec: DataSpec,
    label_column: str,
    data_root: Path | None,
    base_dir: Path | None,
    loaded: LoadedData,
) -> None:
    parts = [
        _load_file(f, split, spec, label_column, data_root, base_dir, loaded, field) for f in _as_files(split_spec)
    ]
    loaded.splits[split] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    if len(loaded.splits[split]) == 0:
        raise UserError(f"{field} ({', '.join(loaded.sources[split])}): no rows; point it at a file with data")


def _as_files(split_spec: SplitSpec) -> list[DataFile]:
    items = split_spec if isinstance(split_spec, list) else [split_spec]
    return [DataFile(path=item) if isinstance(item, str) else item for item in items]


def _load_file(
    data_file: DataFile,
    split: str,
    spec: DataSpec,
    label_column: str,
    data_root: Path | None,
    base_dir: Path | None,
    loaded: LoadedData,
    field: str,
) -> datasets.Dataset:
    asset = (
        resolve_data_file(data_file.path, data_root, base_dir, field=field)
        if spec.format != "hub"
        else Asset(data_file.path, data_file.path, "hub", data_file.path)
    )
    loaded.sources.setdefault(split, []).append(asset.location)
    if asset.source == "hub":
        dataset = _load_hub(asset, data_file.split or HUB_SPLITS[split], spec.hub_config, field)
    else:
        dataset = _load_local(Path(asset.location), spec, field)
        loaded.file_hashes[asset.location] = sha256_file(Path(asset.location))
    if data_file.label is not None:
        if label_column in dataset.column_names:
            dataset = dataset.remove_columns(label_column)
        dataset = dataset.add_column(label_column, [data_file.label] * len(dataset))
    return dataset


def _load_local(path: Path, spec: DataSpec, field: str) -> datasets.Dataset:
    if path.is_dir():
        raise UserError(f"{field}: {path} is a folder; name the data file inside it (e.g. {path}/train.csv)")
    fmt = spec.format if spec.format != "auto" else SUFFIX_FORMATS.get(path.suffix.lower(), "text")
    if fmt in TEXT_FORMATS:
        text = check_encoding(path, spec.encoding, field)
        # datasets fails on a file without rows with a message that names neither the file nor the fix.
        header_rows = 1 if fmt in {"csv", "tsv"} and spec.columns is None else 0
        if len(list(islice((line for line in text.splitlines() if line.strip()), header_rows + 1))) <= header_rows:
            what = "has a header row but no data rows" if header_rows else "is empty"
            raise UserError(f"{field}: {path} {what}; point {field} at a file with rows")
        if fmt == "json" and (squad := read_squad_json(text, path, field)) is not None:
            return squad
    builder, options = BUILDERS[fmt]
    options = dict(options)
    if fmt in TEXT_FORMATS:
        options["encoding"] = spec.encoding
    if spec.columns is not None:
        if fmt not in {"csv", "tsv"}:
            raise UserError(f"data.columns names csv/tsv header columns, but {path} is {fmt}; remove data.columns")
        options["column_names"] = spec.columns
    try:
        dataset = datasets.load_dataset(builder, data_files={"rows": str(path)}, split="rows", **options)
    except Exception as err:  # datasets/pyarrow/pandas raise many types for a malformed file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{field}: could not read {path} as {fmt} ({reason}); check the file or set data.format"
        ) from err
    named = [name for name in dataset.column_names if not name.startswith("__index_level_")]
    if len(named) < len(dataset.column_names):
        # pandas takes the surplus leading fields as an index and shifts every column: refuse, never misread.
        given = "data.columns" if spec.columns is not None else "the header row"
        raise UserError(
            f"{field}: {path} rows have {len(dataset.column_names)} fields but {given} names {len(named)} "
            f"({', '.join(named)}); name all {len(dataset.column_names)} columns"
        )
    return dataset


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


def _load_hub(asset: Asset, hub_split: str, config: str | None, field: str) -> datasets.Dataset:
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
