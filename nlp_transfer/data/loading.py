"""The recipe's `data:` section -> one DatasetDict: every split read (readers.py), an eval split carved from train
when none is given, seeded subsets taken, and a record of what was read.

Column meaning (text, label) is the task's business; this module only reads rows. It records the sha256 of every
local file, and a provenance key per split (what was read, how, and which subset): equal keys mean equal rows, so
the tokenization and feature caches key on it without reading datasets' private fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import sha256_file
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.assets import Asset, resolve_data_file
from nlp_transfer.data.readers import RECIPE_NAMES, ReadOptions, file_format, read_hub, read_local, read_text
from nlp_transfer.data.rows import ORIGIN, ORIGIN_FILES, joined, per_class, selected
from nlp_transfer.recipe import DataFile, DataSpec, SplitSpec


@dataclass(frozen=True)
class Origin:
    """Where a row of a split came from: the file (or hub dataset) and its row there (1 = the first data row)."""

    source: str
    row: int


# Recipe split name -> default split name of a hub dataset.
HUB_SPLITS = {"train": "train", "eval": "validation", "test": "test"}


@dataclass
class LoadedData:
    splits: datasets.DatasetDict
    sources: dict[str, list[str]]  # split -> the files or hub ids it came from
    file_hashes: dict[str, str] = field(default_factory=dict)  # local file -> sha256
    notes: list[str] = field(default_factory=list)  # what was done to the data, for the log and the card
    keys: dict[str, str] = field(default_factory=dict)  # split -> provenance key (equal keys: equal rows)
    data_root: Path | None = None  # where names resolve, for the other files a task reads (task_file)
    base_dir: Path | None = None
    origins: dict[str, list[int]] = field(default_factory=dict)  # split -> each row's packed origin (ORIGIN)
    files: list[str] = field(default_factory=list)  # the files read, in order: the file numbers of origins

    def origin(self, split: str, row: int) -> Origin | None:
        """The file and file row that row `row` of `split` was read from (None for rows added later)."""
        packed = self.origins.get(split, [])
        if row >= len(packed):
            return None
        return Origin(self.files[packed[row] // ORIGIN_FILES], packed[row] % ORIGIN_FILES + 1)

    def task_file(self, reference: str, field: str) -> Path:
        """A file the task names (e.g. task.labels_file), resolved like a data file and recorded with its sha256."""
        asset = resolve_data_file(reference, self.data_root, self.base_dir, field=field)
        path = Path(asset.location)
        if asset.source == "hub" or not path.is_file():
            raise UserError(f"{field}: '{reference}' is not a file ({asset.location}); name a local file")
        self.file_hashes[asset.location] = sha256_file(path)
        return path


@dataclass
class _Part:
    """One file of a split, read, with its provenance."""

    rows: datasets.Dataset
    key: dict[str, Any]
    own_limit: bool  # the file sets max_samples: it is subset alone, not with the split


def load_data(
    spec: DataSpec, *, label_column: str, seed: int, data_root: Path | None, base_dir: Path | None
) -> LoadedData:
    """Read every split the recipe names; hold out an eval split from train when none is given."""
    loaded = LoadedData(splits=datasets.DatasetDict(), sources={}, data_root=data_root, base_dir=base_dir)
    parts: dict[str, list[_Part]] = {}
    for split in ("train", "eval", "test"):
        split_spec: SplitSpec | None = getattr(spec, split)
        if split_spec is not None:
            parts[split] = _read_parts(
                split_spec, split, f"data.{split}", spec, label_column, data_root, base_dir, loaded, seed
            )

    # Splits are assembled from the files that do not set their own max_samples (held out and subset together),
    # then the files that do, each already subset alone (self-training's pseudo-labels are such a file).
    shared = {split: [p for p in found if not p.own_limit] for split, found in parts.items()}
    own = {split: [p for p in found if p.own_limit] for split, found in parts.items()}
    rows = {split: joined([p.rows for p in found], f"data.{split}") for split, found in shared.items() if found}
    keys = {split: [p.key for p in found] for split, found in shared.items()}
    if "test" not in parts and spec.test_fraction is not None:
        _hold_out(rows, keys, own, "test", spec.test_fraction, seed, loaded.notes)
    if "eval" not in parts:
        if "train" not in rows:
            raise UserError("data.train: every train file sets max_samples, so none is left to hold eval rows out of")
        held_out = rows["train"].train_test_split(test_size=spec.eval_fraction, seed=seed)
        rows["train"], rows["eval"] = held_out["train"], held_out["test"]
        keys["eval"] = [*keys["train"], {"held_out_eval": spec.eval_fraction, "seed": seed}]
        keys["train"] = [*keys["train"], {"held_out_train": spec.eval_fraction, "seed": seed}]
        own["eval"] = []
        loaded.notes.append(
            f"no data.eval: held out {len(held_out['test'])} training rows ({spec.eval_fraction:.0%}, seed {seed})"
        )
    if spec.max_train_per_class is not None and "train" in rows:
        rows["train"] = per_class(rows["train"], label_column, spec.max_train_per_class, seed, loaded.notes)
        keys["train"] = [*keys["train"], {"per_class": spec.max_train_per_class, "seed": seed}]
    limits = {"train": spec.max_train_samples, "eval": spec.max_eval_samples, "test": spec.max_test_samples}
    for split, limit in limits.items():
        if limit is not None and split in rows and len(rows[split]) > limit:
            total = len(rows[split])
            rows[split] = rows[split].shuffle(seed=seed).select(range(limit))
            keys[split] = [*keys[split], {"subset": limit, "seed": seed}]
            loaded.notes.append(f"{split}: random subset of {limit} of {total} rows (seed {seed})")
    for split in [name for name in ("train", "eval", "test") if name in rows or own.get(name)]:
        split_rows = [rows[split]] if split in rows else []
        split_rows += [p.rows for p in own[split]]
        loaded.splits[split] = _without_origins(loaded, split, joined(split_rows, f"data.{split}"))
        loaded.keys[split] = _digest([*keys.get(split, []), *[p.key for p in own[split]]])
    return loaded


def _without_origins(loaded: LoadedData, split: str, rows: datasets.Dataset) -> datasets.Dataset:
    """The split as the task reads it (its own columns only); where each row came from kept in loaded.origins."""
    if ORIGIN not in rows.column_names:
        return rows
    loaded.origins[split] = list(rows[ORIGIN])
    return rows.remove_columns(ORIGIN)


def _hold_out(
    rows: dict[str, datasets.Dataset],
    keys: dict[str, list[Any]],
    own: dict[str, list[_Part]],
    split: str,
    fraction: float,
    seed: int,
    notes: list[str],
) -> None:
    """A split held out of train (seeded), recorded in both splits' provenance keys."""
    if "train" not in rows:
        raise UserError(f"data.train: every train file sets max_samples, so none is left to hold {split} rows out of")
    held_out = rows["train"].train_test_split(test_size=fraction, seed=seed)
    rows["train"], rows[split] = held_out["train"], held_out["test"]
    keys[split] = [*keys["train"], {f"held_out_{split}": fraction, "seed": seed}]
    keys["train"] = [*keys["train"], {f"held_out_train_{split}": fraction, "seed": seed}]
    own[split] = []
    notes.append(f"no data.{split}: held out {len(held_out['test'])} training rows ({fraction:.0%}, seed {seed})")


def load_extra_split(
    split_spec: SplitSpec,
    *,
    split: str,
    field: str,
    data_root: Path | None,
    base_dir: Path | None,
    columns: list[str] | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    names: Mapping[str, str] = RECIPE_NAMES,
) -> LoadedData:
    """A split named outside `data:` (adapt.target.corpus, adapt.target.test, a file given to evaluate or cluster),
    read like data.<split> is; errors name `field`. The split name picks the hub dataset's default split; `columns`
    names the columns of a header-less csv/tsv, `delimiter` separates csv/tsv fields, `encoding` is the files' text
    encoding; `names` says how the command sets each of these (e.g. --columns), for messages."""
    loaded = LoadedData(splits=datasets.DatasetDict(), sources={}, data_root=data_root, base_dir=base_dir)
    spec = DataSpec(train=split_spec, columns=columns, delimiter=delimiter, encoding=encoding)
    found = _read_parts(split_spec, split, field, spec, "label", data_root, base_dir, loaded, names=names)
    loaded.splits[split] = _without_origins(loaded, split, joined([p.rows for p in found], field))
    loaded.keys[split] = _digest([p.key for p in found])
    return loaded


def _read_parts(
    split_spec: SplitSpec,
    split: str,
    field: str,
    spec: DataSpec,
    label_column: str,
    data_root: Path | None,
    base_dir: Path | None,
    loaded: LoadedData,
    seed: int = 0,
    names: Mapping[str, str] = RECIPE_NAMES,
) -> list[_Part]:
    with quiet_libraries():  # datasets' progress bars and warnings: held for the run log (core.quiet)
        parts = [
            _read_file(f, split, spec, label_column, data_root, base_dir, loaded, field, seed, names)
            for f in as_files(split_spec)
        ]
    if sum(len(p.rows) for p in parts) == 0:
        raise UserError(f"{field} ({', '.join(loaded.sources[split])}): no rows; point it at a file with data")
    return parts


def as_files(split_spec: SplitSpec) -> list[DataFile]:
    items = split_spec if isinstance(split_spec, list) else [split_spec]
    return [DataFile(path=item) if isinstance(item, str) else item for item in items]


def _read_file(
    data_file: DataFile,
    split: str,
    spec: DataSpec,
    label_column: str,
    data_root: Path | None,
    base_dir: Path | None,
    loaded: LoadedData,
    field: str,
    seed: int,
    names: Mapping[str, str] = RECIPE_NAMES,
) -> _Part:
    declared = data_file.format or spec.format
    if data_file.label is not None and data_file.label_lines is not None:
        raise UserError(f"{field} ({data_file.path}): label and label_lines both label its rows; keep one")
    asset = (
        resolve_data_file(data_file.path, data_root, base_dir, field=field)
        if declared != "hub"
        else Asset(data_file.path, data_file.path, "hub", data_file.path)
    )
    loaded.sources.setdefault(split, []).append(asset.location)
    key: dict[str, Any] = {"label": data_file.label, "max_samples": data_file.max_samples}
    if asset.source == "hub":
        hub_split = data_file.split or HUB_SPLITS[split]
        rows = read_hub(asset, hub_split, spec.hub_config, field)
        key |= {"hub": asset.location, "config": spec.hub_config, "split": hub_split, "info": _hub_identity(rows)}
    else:
        path = Path(asset.location)
        fmt = file_format(path, declared)
        tabular = fmt in {"csv", "tsv"}
        if spec.columns is not None and not tabular and data_file.format is None:
            raise UserError(
                f"{names['columns']} names csv/tsv header columns, but {path} is {fmt}; remove {names['columns']}"
            )
        if data_file.delimiter is not None and not tabular:
            raise UserError(f"{field}: delimiter is for csv/tsv files, but {path} is {fmt}; remove it")
        columns = spec.columns if tabular else None
        delimiter = (data_file.delimiter or spec.delimiter) if tabular else None
        read = ReadOptions(format=fmt, encoding=spec.encoding, columns=columns, delimiter=delimiter, names=names)
        rows = read_local(path, read, field)
        loaded.file_hashes[asset.location] = sha256_file(path)
        key |= {"sha256": loaded.file_hashes[asset.location], "format": fmt, "columns": columns}
        if delimiter is not None:  # only when set: the keys of files read as before stay as they were
            key["delimiter"] = delimiter
    loaded.files.append(asset.location)
    rows = rows.add_column(ORIGIN, [(len(loaded.files) - 1) * ORIGIN_FILES + i for i in range(len(rows))])
    if data_file.where:
        rows = selected(rows, data_file.where, f"{field} ({asset.location})")
        key["where"] = sorted((k, str(v)) for k, v in data_file.where.items())
    if data_file.label is not None:
        if label_column in rows.column_names:
            rows = rows.remove_columns(label_column)
        rows = rows.add_column(label_column, [data_file.label] * len(rows))
    if data_file.label_lines is not None:
        rows, key["label_lines"] = _with_label_lines(rows, data_file, label_column, loaded, field, data_root, base_dir)
    if data_file.max_samples is not None and len(rows) > data_file.max_samples:
        loaded.notes.append(
            f"{split}: random subset of {data_file.max_samples} of {len(rows)} rows of {data_file.path} (seed {seed})"
        )
        rows = rows.shuffle(seed=seed).select(range(data_file.max_samples))
        key["seed"] = seed
    return _Part(rows, key, own_limit=data_file.max_samples is not None)


def _with_label_lines(
    rows: datasets.Dataset,
    data_file: DataFile,
    label_column: str,
    loaded: LoadedData,
    field: str,
    data_root: Path | None,
    base_dir: Path | None,
) -> tuple[datasets.Dataset, str]:
    """Line i of the label_lines file labels row i (TweetEval keeps texts and labels in two files)."""
    assert data_file.label_lines is not None
    where = f"{field} label_lines"
    asset = resolve_data_file(data_file.label_lines, data_root, base_dir, field=where)
    path = Path(asset.location)
    if not path.is_file():
        raise UserError(f"{where}: {asset.location} is not a file; name the file with one label per line")
    labels = [line.strip() for line in read_text(path, "utf-8", where)[0].splitlines()]
    if len(labels) != len(rows):
        raise UserError(
            f"{where}: {path} has {len(labels)} lines but {data_file.path} has {len(rows)} rows; each row needs "
            "the label on the same line number"
        )
    loaded.file_hashes[asset.location] = sha256_file(path)
    if label_column in rows.column_names:
        rows = rows.remove_columns(label_column)
    return rows.add_column(label_column, labels), loaded.file_hashes[asset.location]


def _hub_identity(rows: datasets.Dataset) -> Any:
    """What identifies a hub dataset split without private fingerprints: its recorded sizes and checksums."""
    info = rows.info
    return {
        "version": str(info.version) if info.version else None,
        "checksums": info.download_checksums,
        "splits": {name: (s.num_examples, s.num_bytes) for name, s in (info.splits or {}).items()},
        "rows": len(rows),
    }


def _digest(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
