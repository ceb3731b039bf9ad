"""What the three text tasks (classification, multi_label, regression) share when they prepare data: the columns
checked, rows without a usable text or label skipped and counted (never silently), and every split tokenized through
the cache with its labels, truncated or windowed as the task's TextInputs say."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.data.cache import cache_key, cached_map, split_key, tokenizer_fingerprint
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.tasks.text_inputs import DOCUMENT, TextInputs, encode_texts

Batch = dict[str, list[Any]]
Usable = Callable[[Batch, int], bool]  # whether row i of a batch can train
LabelsOf = Callable[[Batch, list[int]], list[Any]]  # the labels of the given (usable) rows of a batch


def where(split: str, data: LoadedData) -> str:
    return f"data.{split} ({', '.join(data.sources.get(split, ['held out from train']))})"


def check_columns(
    split: datasets.Dataset, name: str, data: LoadedData, fields: Sequence[tuple[str, str | None]]
) -> None:
    """Each (recipe field, column) must be a column of the split; None means the field is not used."""
    for field, column in fields:
        if column is not None and column not in split.column_names:
            raise UserError(
                f"{where(name, data)}: column '{column}' (task.{field}) not found"
                f"{did_you_mean(column, split.column_names)}; columns are: {', '.join(split.column_names)}. "
                f"Fix task.{field}"
            )


def has_texts(config: Any, batch: Batch, i: int) -> bool:
    texts = [batch[c][i] for c in (config.text, config.text_pair) if c]
    return all(isinstance(t, str) and t.strip() for t in texts)


def count_unusable(
    split: datasets.Dataset, name: str, data: LoadedData, columns: list[str], usable: Usable, notes: list[str]
) -> None:
    """Rows with an empty text or a missing label are skipped and counted; a split with none usable fails."""
    rows = split.select_columns(columns).to_dict()
    dropped = sum(not usable(rows, i) for i in range(len(split)))
    if dropped == len(split):
        raise UserError(f"{where(name, data)}: no usable rows (every text is empty or every label missing)")
    if dropped:
        notes.append(f"{name}: skipped {dropped} of {len(split)} rows with an empty text or a missing label")


def tokenize_splits(
    data: LoadedData,
    tokenizer: PreTrainedTokenizerBase,
    config: Any,
    *,
    usable: Usable,
    labels_of: LabelsOf,
    settings: dict[str, Any],
    pad_to_max_length: bool,
    notes: list[str],
) -> tuple[datasets.DatasetDict, dict[str, bool], dict[str, str]]:
    """Every split as model inputs plus `labels` (one row per text, or per window with a `document` column: the
    text's row in its split). `settings` are the task's own label settings, for the cache key."""
    inputs = TextInputs.of(config)

    def tokenize(batch: Batch, indices: list[int]) -> dict[str, list[Any]]:
        rows = [i for i in range(len(indices)) if usable(batch, i)]
        pairs = [batch[config.text_pair][i] for i in rows] if config.text_pair else None
        encoded = encode_texts(tokenizer, [batch[config.text][i] for i in rows], pairs, inputs, pad_to_max_length)
        labels = labels_of(batch, rows)
        result: dict[str, list[Any]] = dict(encoded.rows)
        result["labels"] = [labels[d] for d in encoded.documents]
        if inputs.windowed:
            result[DOCUMENT] = [indices[rows[d]] for d in encoded.documents]
        return result

    key = {
        **settings,
        "columns": [config.text, config.text_pair],
        "text_inputs": inputs.settings(),
        "pad_to_max_length": pad_to_max_length,
        "tokenizer": tokenizer_fingerprint(tokenizer),
    }
    tokenized = datasets.DatasetDict()
    hits, keys = {}, {}
    for name, split in data.splits.items():
        keys[name] = cache_key(split_key(data, name), key)
        tokenized[name], hits[name] = cached_map(
            split, tokenize, key=keys[name], description=f"Tokenizing {name}", with_indices=True
        )
    if inputs.windowed:
        counts = ", ".join(f"{n} {len(set(s[DOCUMENT])):,} texts -> {len(s):,}" for n, s in tokenized.items())
        notes.append(f"windows of {inputs.max_length} tokens (stride {inputs.stride}): {counts}")
    return tokenized, hits, keys


TEXT_DTYPES = {"string", "large_string"}


def text_fields(config: Any) -> dict[str, str]:
    """A text task's text columns by the field that names them ({"task.text": "review", ...}), for check_kinds."""
    return {f"task.{f}": c for f, c in (("text", config.text), ("text_pair", config.text_pair)) if c}


def check_kinds(
    rows: datasets.Dataset, where: str, texts: dict[str, str], label: tuple[str, str] | None = None
) -> None:
    """Text columns hold text and the label column one label per row, by the columns' types, before any row is
    skipped: a column of numbers named as the text is a wrong column, not "every text is empty", and a column of
    lists is several labels per text. `texts` maps how each column is named (task.text, --text) to the column."""
    features = rows.features
    for named, column in texts.items():
        dtype = getattr(features[column], "dtype", None)
        if dtype in TEXT_DTYPES:
            continue
        what = _kind(features[column], dtype)
        others = [
            c for c, f in features.items() if getattr(f, "dtype", None) in TEXT_DTYPES and c not in texts.values()
        ]
        hint = f" (columns of text: {', '.join(others)})" if others else ""
        raise UserError(
            f"{where}: column '{column}' ({named}) holds {what}, not text; name the text column in {named}{hint}"
        )
    if label is None:  # multi-label and regression check their label columns themselves
        return
    named, column = label
    feature = features[column]
    if isinstance(feature, datasets.List | datasets.Sequence):
        lists = [v for v in rows[column] if v]
        example: Any = next((v for v in lists if len(v) > 1), lists[0] if lists else [])
        raise UserError(
            f"{where}: column '{column}' ({named}) holds lists of labels (e.g. {example!r}); a list is several labels "
            "for one text, and classification predicts one label per text. For several labels per text use "
            "task.name: multi_label; otherwise give each row one label"
        )
    if not isinstance(feature, datasets.Value | datasets.ClassLabel):
        raise UserError(f"{where}: column '{column}' ({named}) holds {_kind(feature, None)}, not one label per row")


def _kind(feature: Any, dtype: str | None) -> str:
    if dtype == "null":
        return "no values at all"
    if dtype is not None:
        return f"{'true/false values' if dtype == 'bool' else 'numbers'} ({dtype})"
    return (
        "lists"
        if isinstance(feature, datasets.List | datasets.Sequence)
        else f"nested values ({type(feature).__name__})"
    )
