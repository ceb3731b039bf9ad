"""Tokenization cache: the same data and tokenizer with the same settings are tokenized once.

The key combines the dataset's fingerprint (datasets derives it from the files and every transform applied), a
fingerprint of the tokenizer, and the task's preprocessing settings. Entries are written to a temporary folder and
renamed into place, so an interrupted write never leaves a half cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets

CACHE_ENV = "NLP_TRANSFER_CACHE"


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


def cached_map(
    dataset: datasets.Dataset,
    transform: Callable[..., dict[str, list[Any]]],
    *,
    key: dict[str, Any],
    description: str,
    with_indices: bool = False,
) -> tuple[datasets.Dataset, bool]:
    """Apply a batched transform (dropping the original columns), reusing a cached result. Returns (data, hit).

    With with_indices the transform is called as transform(batch, row_indices)."""
    digest = hashlib.sha256(
        json.dumps({"data": dataset._fingerprint, **key}, sort_keys=True, default=str).encode()
    ).hexdigest()[:32]
    entry = cache_root() / "tokenized" / digest
    if (entry / "dataset_info.json").is_file():
        return datasets.load_from_disk(str(entry)), True
    mapped = dataset.map(
        transform,
        batched=True,
        with_indices=with_indices,
        remove_columns=dataset.column_names,
        desc=description,
        load_from_cache_file=False,
        new_fingerprint=digest,  # our key already says what this is; datasets need not hash the function
    )
    staging = entry.with_name(f".{digest}.{uuid.uuid4().hex}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        mapped.save_to_disk(str(staging))
        os.replace(staging, entry)
    except OSError:
        # Another process filled the entry first, or the cache is not writable: the mapped data is still good.
        shutil.rmtree(staging, ignore_errors=True)
        return mapped, False
    return datasets.load_from_disk(str(entry)), False
