"""Multi-label classification: a text -> any number of L labels (emotions, topics, moderation flags).

Labels are read from one column (a JSON list of names or ids, or a delimited string such as GoEmotions' `3,12`) or
from one 0/1 column per label. In the prepared splits they are a 0/1 float matrix: `labels` is (N, L), row i the
labels of text i (the representation other parts of the toolkit read). Training uses one sigmoid per label
(task.loss: binary cross-entropy, focal or asymmetric, multi_label_losses.py; class_weights give per-label positive
weights), and decision thresholds are tuned on the eval split (thresholds.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import MultiLabelTask
from nlp_transfer.tasks import multi_label_report
from nlp_transfer.tasks.base import PreparedTask
from nlp_transfer.tasks.classification import normalise_label
from nlp_transfer.tasks.evaluation import metrics_for
from nlp_transfer.tasks.extra_metrics import LoadedMetric, extra_scores
from nlp_transfer.tasks.input_kinds import TEXTS, InputKind
from nlp_transfer.tasks.label_names import declared_names
from nlp_transfer.tasks.metrics import multi_label_metrics
from nlp_transfer.tasks.multi_label_losses import loss_for
from nlp_transfer.tasks.predictions import Decoder, ModelFacts, Row
from nlp_transfer.tasks.results import TaskResults
from nlp_transfer.tasks.text_inputs import TextInputs
from nlp_transfer.tasks.text_rows import (
    Batch,
    check_columns,
    check_kinds,
    count_unusable,
    has_texts,
    text_fields,
    tokenize_splits,
    where,
)
from nlp_transfer.tasks.thresholds import THRESHOLDS_FILE, Decisions, from_record

LIST, DELIMITED = "a list", "a delimited string"


class MultiLabel:
    auto_model_class: ClassVar[Any] = AutoModelForSequenceClassification
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    pipeline_tag: ClassVar[str] = "text-classification"
    pooled_features: ClassVar[bool] = True
    predict_example: ClassVar[str] = '"your text here"'
    padding_side: ClassVar[str | None] = None  # the tokenizer's own

    results: ClassVar[TaskResults] = multi_label_report  # its baseline, view, usage example and card lines
    inputs: ClassVar[InputKind] = TEXTS  # what its model reads and returns; export checks it on samples
    corrects_label_prior: ClassVar[bool] = False  # an adapted model's label_prior.json shifts its logits
    does: ClassVar[str] = "labels"  # what its model does with texts, for messages

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        return label_set_rows(facts.label_names, thresholds_of(facts.folder, facts.label_names, facts.origin))

    def __init__(self, config: MultiLabelTask) -> None:
        self.config = config

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        notes: list[str] = []
        label_columns = config.label if isinstance(config.label, list) else [config.label]
        for name, split in data.splits.items():
            fields = [("text", config.text), ("text_pair", config.text_pair)]
            check_columns(split, name, data, fields + [("label", c) for c in label_columns])
            check_kinds(split, where(name, data), text_fields(config))
            count_unusable(split, name, data, [c for c in (config.text, config.text_pair) if c], self._usable, notes)
        reader = LabelReader(config, declared_names(config, data))
        reader.learn(data)
        matrices = {name: reader.matrix(split, where(name, data)) for name, split in data.splits.items()}
        names = reader.names
        positives = matrices["train"].sum(axis=0)
        weights = positive_weights(config.class_weights, positives, len(matrices["train"]), names, notes)

        def labels_of(batch: Batch, rows: list[int]) -> list[list[float]]:
            return [reader.vector(batch, i).tolist() for i in rows]

        tokenized, hits, keys = tokenize_splits(
            data,
            tokenizer,
            config,
            usable=self._usable,
            labels_of=labels_of,
            settings={
                "task": "multi_label",
                "label": label_columns,
                "names": names,
                "delimiter": config.label_delimiter,
            },
            pad_to_max_length=pad_to_max_length,
            notes=notes,
        )
        decisions = Decisions(names, config.thresholds, config.threshold, config.threshold_shrinkage)
        extras: list[LoadedMetric] = []
        return PreparedTask(
            splits=tokenized,
            model_kwargs={
                "num_labels": len(names),
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
                "problem_type": "multi_label_classification",  # transformers' pipeline then applies sigmoids
            },
            batch_metrics_for=metrics_for(TextInputs.of(config), scorer(names, decisions, config.threshold, extras)),
            label_names=names,
            notes=notes,
            cache_hits=hits,
            keys=keys,
            resolved={"positive_weights": weights} if weights is not None else {},
            loss=loss_for(config.loss, weights),
            settle=decisions.settle,
            extra_metrics=extras,
        )

    def _usable(self, batch: Batch, i: int) -> bool:
        return has_texts(self.config, batch, i)


class LabelReader:
    """A row's label cell(s) -> its 0/1 vector over the label names (declared, or learned from train)."""

    def __init__(self, config: MultiLabelTask, declared: list[str] | None, names: list[str] | None = None) -> None:
        """`declared`: the recipe's label names (int labels are ids into them); `names`: the labels of a trained
        model, whose int labels are ids only when the recipe declared the names."""
        self.config = config
        self.columns = config.label if isinstance(config.label, list) else None  # one 0/1 column per label
        self.column = config.label if isinstance(config.label, str) else ""  # or one column of label lists
        self.names: list[str] = list(self.columns) if self.columns else (names or declared or [])
        self.declared = self.columns is not None or declared is not None
        self.learned = names is not None or self.declared

    def learn(self, data: LoadedData) -> None:
        """Without declared names, the labels are those found in train (ids in numeric order, names sorted)."""
        if self.learned:
            return
        found: set[int | str] = set()
        for value in data.splits["train"][self.column]:
            found.update(normalise_label(item) for item in self._items(value)[1])
        if not found:
            raise UserError(f"{where('train', data)}: no labels in column '{self.column}'; check task.label")
        self.names = [str(v) for v in sorted(found, key=lambda v: (isinstance(v, str), v))]

    def _items(self, value: Any) -> tuple[str | None, list[Any]]:
        """(shape, items) of one label cell: a list, or a delimited string (a number is a one-item string)."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None, []
        if isinstance(value, list | tuple | np.ndarray):
            return LIST, list(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return DELIMITED, [value]
        text = str(value).strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return LIST, parsed
        return DELIMITED, [part.strip() for part in text.split(self.config.label_delimiter) if part.strip()]

    def _id(self, item: Any, place: str) -> int:
        label = normalise_label(item)
        if isinstance(label, int) and self.declared and label not in range(len(self.names)):
            source = "task.labels_file" if self.config.labels_file else "task.labels"
            raise UserError(
                f"{place}: label id {label} is outside the {len(self.names)} names of {source} (ids 0 to "
                f"{len(self.names) - 1}); the names must match the ids (fix {source} or the data)"
            )
        if isinstance(label, int) and self.declared:
            return label
        if str(label) in self.names:
            return self.names.index(str(label))
        known = ", ".join(self.names[:10]) + (", ..." if len(self.names) > 10 else "")
        among = "task.labels_file" if self.config.labels_file else "task.labels" if self.declared else "train's labels"
        raise UserError(f"{place}: label {item!r} is not among {among} [{known}]; fix the data or the label names")

    def vector(self, batch: Batch, i: int, place: str = "a row") -> np.ndarray:
        row = np.zeros(len(self.names), dtype=np.float32)
        if self.columns is not None:
            for index, column in enumerate(self.columns):
                row[index] = _flag(batch[column][i], f"{place}, column '{column}'")
            return row
        for item in self._items(batch[self.column][i])[1]:
            row[self._id(item, place)] = 1.0
        return row

    def matrix(self, split: Any, place: str) -> np.ndarray:
        """The split's labels (N, L), checked: one label shape per column, known labels, no empty row unless allowed.
        A row is named by its text in messages (a split held out from train is shuffled: numbers would mislead)."""
        columns = self.columns or [self.column]
        rows = split.select_columns(columns).to_dict()
        texts = [str(t) for t in split[self.config.text]] if self.config.text in split.column_names else None

        def row(i: int) -> str:
            text = texts[i] if texts is not None else ""
            return f"the row with text {text if len(text) <= 40 else text[:37] + '...'!r}" if texts else f"row {i + 1}"

        if self.columns is None:
            shapes: dict[str, int] = {}
            for index, value in enumerate(rows[self.column]):
                shape = self._items(value)[0]
                if shape is not None:
                    shapes.setdefault(shape, index)
            if len(shapes) > 1:
                (first, a), (second, b) = sorted(shapes.items(), key=lambda item: item[1])[:2]
                raise UserError(
                    f"{place}: column '{self.column}' mixes label shapes: {row(a)} is {first}, {row(b)} is "
                    f"{second}; write every row's labels one way"
                )
        found = np.stack([self.vector(rows, i, f"{place}, {row(i)}") for i in range(len(split))])
        empty = np.flatnonzero(found.sum(axis=1) == 0)
        if len(empty) and not self.config.allow_empty:
            raise UserError(
                f"{place}: {row(int(empty[0]))} has no label ({len(empty)} rows have none) and "
                "task.allow_empty is false; label every row, or set task.allow_empty: true"
            )
        return found


def _flag(value: Any, place: str) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return 0.0
    text = str(value).strip().lower()
    if text in {"1", "1.0", "true"}:
        return 1.0
    if text in {"0", "0.0", "false", ""}:
        return 0.0
    raise UserError(f"{place}: {value!r} is not 0 or 1; one 0/1 column per label is expected")


def positive_weights(
    setting: str | list[float], positives: np.ndarray, rows: int, names: list[str], notes: list[str]
) -> list[float] | None:
    """Per-label weights of the positive term of the loss: balanced = negatives / positives in train (each label's
    two outcomes weigh the same in total), or as given."""
    if setting == "none":
        return None
    if isinstance(setting, list):
        if len(setting) != len(names):
            raise UserError(
                f"task.class_weights: {len(setting)} weights for {len(names)} labels; "
                "give one per label, in label order"
            )
        return [float(w) for w in setting]
    weights = [float((rows - p) / p) if p > 0 else 1.0 for p in positives]
    absent = [n for n, p in zip(names, positives, strict=True) if p == 0]
    if absent:
        notes.append(f"class weights: {', '.join(absent)} never occur in train; weight 1.0")
    notes.append(
        "class weights (balanced positive weights): "
        + ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=True))
    )
    return weights


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def scorer(names: list[str], decisions: Decisions, fixed: float, extras: list[LoadedMetric]) -> Any:
    """Score (logits (N, L), gold (N, L)) -> the metrics at the run's thresholds, plus macro/micro-F1 at the fixed
    threshold (what tuning adds) and the extra metrics (on the 0/1 predictions)."""
    from sklearn.metrics import f1_score

    def score(logits: np.ndarray, gold: np.ndarray) -> dict[str, float]:
        probabilities = sigmoid(logits)
        gold = np.asarray(gold).astype(int)
        predicted = probabilities >= decisions.thresholds(probabilities, gold)
        metrics = multi_label_metrics(gold, predicted, probabilities, names)
        at_fixed = (probabilities >= fixed).astype(int)
        metrics["macro_f1_fixed"] = float(f1_score(gold, at_fixed, average="macro", zero_division=0.0))
        metrics["micro_f1_fixed"] = float(f1_score(gold, at_fixed, average="micro", zero_division=0.0))
        return metrics | extra_scores(extras, predicted.astype(int).tolist(), gold.tolist(), set(metrics))

    return score


def thresholds_of(folder: Path, names: list[str], origin: str) -> np.ndarray:
    """The decision thresholds a multi-label run tuned (thresholds.json); a folder without them cannot decide."""
    found = from_record(read_json_or_empty(folder / THRESHOLDS_FILE), names)
    if found is None:
        raise UserError(
            f"{origin}: {THRESHOLDS_FILE} is missing or does not give a threshold for every label; it is part of a "
            "multi-label model (copy it with the folder, or train the run again)"
        )
    return found


def label_set_rows(names: list[str], thresholds: np.ndarray) -> Decoder:
    """The labels whose probability reaches their threshold, and every label's probability: from (B, L) logits."""

    def decode(items: list[Row], logits: torch.Tensor) -> list[Row]:
        rows = []
        for item, row in zip(items, sigmoid(logits.numpy()), strict=True):
            chosen = [name for name, p, t in zip(names, row, thresholds, strict=True) if p >= t]
            named = {name: round(float(p), 6) for name, p in zip(names, row, strict=True)}
            rows.append(item | {"labels": chosen, "probabilities": named})
        return rows

    return decode
