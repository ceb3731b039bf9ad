"""Sequence classification: one text or a text pair -> one of K labels (sentiment, topic, question type, NLI)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import datasets
import numpy as np
from transformers import AutoModelForSequenceClassification, EvalPrediction, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.data.cache import cache_key, cached_map, split_key, tokenizer_fingerprint
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import ClassificationTask
from nlp_transfer.tasks.base import PreparedTask
from nlp_transfer.tasks.metrics import classification_metrics

LabelValue = int | str


class Classification:
    auto_model_class: ClassVar[Any] = AutoModelForSequenceClassification
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    pipeline_tag: ClassVar[str] = "text-classification"
    pooled_features: ClassVar[bool] = True
    predict_example: ClassVar[str] = '"your text here"'

    def __init__(self, config: ClassificationTask) -> None:
        self.config = config

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        notes: list[str] = []
        for name, split in data.splits.items():
            self._check_columns(split, name, data)
            texts = {f"task.{f}": c for f, c in (("text", config.text), ("text_pair", config.text_pair)) if c}
            check_kinds(split, _where(name, data), texts, ("task.label", config.label))
            self._count_unusable(split, name, data, notes)
        label_ids = self._label_ids(data)
        names = self._label_names(label_ids)

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            rows = [i for i in range(len(batch[config.label])) if self._usable(batch, i)]
            pairs = [batch[config.text_pair][i] for i in rows] if config.text_pair else None
            encoded = tokenizer(
                [batch[config.text][i] for i in rows],
                pairs,
                truncation=True,
                max_length=config.max_length,
                padding="max_length" if pad_to_max_length else False,
            )
            encoded["labels"] = [label_ids[normalise_label(batch[config.label][i])] for i in rows]
            return dict(encoded)

        key = {
            "task": "classification",
            "columns": [config.text, config.text_pair, config.label],
            "labels": sorted((str(k), v) for k, v in label_ids.items()),
            "max_length": config.max_length,
            "pad_to_max_length": pad_to_max_length,
            "tokenizer": tokenizer_fingerprint(tokenizer),
        }
        tokenized = datasets.DatasetDict()
        hits, keys = {}, {}
        for name, split in data.splits.items():
            keys[name] = cache_key(split_key(data, name), key)
            tokenized[name], hits[name] = cached_map(split, tokenize, key=keys[name], description=f"Tokenizing {name}")
        return PreparedTask(
            splits=tokenized,
            model_kwargs={
                "num_labels": len(names),
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
            },
            compute_metrics=lambda prediction: _metrics(prediction, names),
            label_names=names,
            notes=notes,
            cache_hits=hits,
            keys=keys,
        )

    def _usable(self, batch: dict[str, list[Any]], i: int) -> bool:
        """A row trains only with non-empty text(s) and a label."""
        config = self.config
        texts = [batch[c][i] for c in (config.text, config.text_pair) if c]
        label = batch[config.label][i]
        return all(isinstance(t, str) and t.strip() for t in texts) and label is not None and str(label).strip() != ""

    def _check_columns(self, split: datasets.Dataset, name: str, data: LoadedData) -> None:
        config = self.config
        for field, column in (("text", config.text), ("text_pair", config.text_pair), ("label", config.label)):
            if column is not None and column not in split.column_names:
                raise UserError(
                    f"{_where(name, data)}: column '{column}' (task.{field}) not found"
                    f"{did_you_mean(column, split.column_names)}; columns are: {', '.join(split.column_names)}. "
                    f"Fix task.{field}"
                )

    def _count_unusable(self, split: datasets.Dataset, name: str, data: LoadedData, notes: list[str]) -> None:
        """Rows with an empty text or a missing label are skipped, and counted: never silently."""
        columns = {c: split[c] for c in (self.config.text, self.config.text_pair, self.config.label) if c}
        dropped = sum(not self._usable(columns, i) for i in range(len(split)))
        if dropped == len(split):
            raise UserError(f"{_where(name, data)}: no usable rows (every text is empty or every label missing)")
        if dropped:
            notes.append(f"{name}: skipped {dropped} of {len(split)} rows with an empty text or a missing label")

    def _label_ids(self, data: LoadedData) -> dict[LabelValue, int]:
        """Map label values to ids. Int labels keep their value when task.labels names them; else sorted order."""
        column = self.config.label
        labels = {
            name: [v for v in split[column] if v is not None and str(v).strip()] for name, split in data.splits.items()
        }
        train_counts = Counter(normalise_label(v) for v in labels["train"])
        declared = self.config.labels
        if declared is not None and all(isinstance(v, int) for v in train_counts):
            mapping: dict[LabelValue, int] = {i: i for i in range(len(declared))}
        elif declared is not None:
            mapping = {name: i for i, name in enumerate(declared)}
        else:
            mapping = {value: i for i, value in enumerate(sorted(train_counts, key=lambda v: (str(type(v)), v)))}
        if declared is None and len(mapping) < 2:
            raise UserError(
                f"data.train: the '{column}' column has only one label ({next(iter(mapping))!r}); a classifier needs "
                "at least two. Check task.label, or list every class in task.labels"
            )
        for name, values in labels.items():
            unknown = Counter(v for v in map(normalise_label, values) if v not in mapping)
            if unknown:
                seen = ", ".join(f"{v!r} ({n} rows)" for v, n in unknown.most_common(5))
                known = ", ".join(repr(v) for v in mapping)
                source = "task.labels" if declared is not None and name == "train" else "the training labels"
                raise UserError(
                    f"{_where(name, data)}: labels {seen} are not among {source} [{known}]; "
                    "fix the data or list every class in task.labels"
                )
        return mapping

    def _label_names(self, label_ids: dict[LabelValue, int]) -> list[str]:
        if self.config.labels is not None:
            return list(self.config.labels)
        return [str(value) for value, _ in sorted(label_ids.items(), key=lambda item: item[1])]


TEXT_DTYPES = {"string", "large_string"}


def check_kinds(rows: datasets.Dataset, where: str, texts: dict[str, str], label: tuple[str, str]) -> None:
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


def _where(split: str, data: LoadedData) -> str:
    return f"data.{split} ({', '.join(data.sources.get(split, ['held out from train']))})"


def normalise_label(value: Any) -> LabelValue:
    """1, 1.0, True and ' 1 ' are the same label 1; other strings are labels as written (stripped)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def gold_ids(
    values: Sequence[Any],
    names: list[str],
    declared: bool,
    where: str,
    fix: str = "the target test set must use the source's labels (fix the file or adapt.target.label)",
) -> np.ndarray:
    """Label values as written in a file -> class ids, by the rules training used (_label_ids above): int labels
    are ids when task.labels names them, otherwise a value is a class by its name. For data read after training
    (the adapt target test set, `nlp-transfer evaluate`): `fix` says what to change."""
    ids = []
    for value in values:
        label = normalise_label(value)
        if declared and isinstance(label, int) and 0 <= label < len(names):
            ids.append(label)
        elif str(label) in names:
            ids.append(names.index(str(label)))
        else:
            raise UserError(f"{where}: label {value!r} is not one of the model's labels [{', '.join(names)}]; {fix}")
    return np.asarray(ids)


def _metrics(prediction: EvalPrediction, label_names: list[str]) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    predicted = np.asarray(logits).argmax(axis=-1)
    return classification_metrics(np.asarray(prediction.label_ids), predicted, label_names)
