"""Tokenization cache: the same data and tokenizer with the same settings are tokenized once.

The key combines the split's provenance key (loading.LoadedData.keys: the files' sha256, how they were read, which
subset), a fingerprint of the tokenizer, and the task's preprocessing settings. Entries are written to a temporary
folder and renamed into place, so an interrupted write never leaves a half cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

CACHE_ENV = "NLP_TRANSFER_CACHE"
# Rows from which tokenizing takes long enough (seconds) to deserve a progress bar on a terminal; below it, and for
# writing the cache entry (datasets' "Saving the dataset" bar), nothing is drawn.
BAR_FROM_ROWS = 20_000


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "nlp-transfer")).expanduser()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of what decides token ids: the full tokenizer definition (fast tokenizers) plus special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Calling a tokenizer stores its last truncation/padding settings in the definition; they change no ids here
        # (each call passes its own), so leave them out or every run after the first would miss the cache.
        definition = json.loads(backend.to_str())
        definition.pop("truncation", None)
        definition.pop("padding", None)
    else:
        definition = tokenizer.get_vocab()
    extra = json.dumps(
        [
            type(tokenizer).__name__,
            tokenizer.special_tokens_map,
            tokenizer.padding_side,
            tokenizer.truncation_side,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256((json.dumps(definition, sort_keys=True) + extra).encode()).hexdigest()


def split_key(data: Any, split: str) -> str:
    """The provenance key load_data recorded for a split, or (for rows built in code) a hash of the rows."""
    key = data.keys.get(split)
    return key if key is not None else content_key(data.splits[split])


def content_key(dataset: datasets.Dataset) -> str:
    """A hash of the rows themselves (their Arrow IPC bytes): for datasets that did not come through load_data."""
    table = dataset.with_format("arrow")[:]  # the rows in order, selections and shuffles applied
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:32]


def cache_key(data_key: str, settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"data": data_key, **settings}, sort_keys=True, default=str).encode()).hexdigest()[
        :32
    ]


def cached_map(
    dataset: datasets.Dataset,
    transform: Callable[..., dict[str, list[Any]]],
    *,
    key: str,
    description: str,
    with_indices: bool = False,
) -> tuple[datasets.Dataset, bool]:
    """Apply a batched transform (dropping the original columns), reusing a cached result stored under `key`
    (cache_key). Returns (data, hit). With with_indices the transform is called as transform(batch, row_indices)."""
    entry = cache_root() / "tokenized" / key
    if (entry / "dataset_info.json").is_file():
        return datasets.load_from_disk(str(entry)), True
    with _bars(len(dataset) >= BAR_FROM_ROWS):
        mapped = dataset.map(
            transform,
            batched=True,
            with_indices=with_indices,
            remove_columns=dataset.column_names,
            desc=description,
            load_from_cache_file=False,
            new_fingerprint=key,  # our key already says what this is; datasets need not hash the function
        )
    staging = entry.with_name(f".{key}.{uuid.uuid4().hex}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _bars(False):
            mapped.save_to_disk(str(staging))
        os.replace(staging, entry)
    except OSError:
        # Another process filled the entry first, or the cache is not writable: the mapped data is still good.
        shutil.rmtree(staging, ignore_errors=True)
        return mapped, False
    return datasets.load_from_disk(str(entry)), False


@contextmanager
def _bars(wanted: bool) -> Iterator[None]:
    """datasets' progress bars on only if `wanted` and they were on (a pipe or log file has them off), restored."""
    was_on = datasets.is_progress_bar_enabled()
    if was_on and not wanted:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on and not wanted:
            datasets.enable_progress_bars()
