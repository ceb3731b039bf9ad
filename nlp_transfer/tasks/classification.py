"""Sequence classification: one text or a text pair -> one of K labels (sentiment, topic, question type, NLI).

Long texts are truncated or windowed as the task says (text_inputs.py); `class_weights` weigh the cross-entropy so
rare classes count (balanced: n / (K * n_class) from the training counts, the weights scikit-learn calls balanced).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import ClassificationTask
from nlp_transfer.tasks import classification_report
from nlp_transfer.tasks.base import LossOnLogits, PreparedTask
from nlp_transfer.tasks.evaluation import metrics_for
from nlp_transfer.tasks.extra_metrics import LoadedMetric, extra_scores
from nlp_transfer.tasks.input_kinds import TEXTS, InputKind
from nlp_transfer.tasks.label_names import declared_names
from nlp_transfer.tasks.metrics import classification_metrics
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

LabelValue = int | str


class Classification:
    auto_model_class: ClassVar[Any] = AutoModelForSequenceClassification
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    pipeline_tag: ClassVar[str] = "text-classification"
    pooled_features: ClassVar[bool] = True
    predict_example: ClassVar[str] = '"your text here"'
    padding_side: ClassVar[str | None] = None  # the tokenizer's own

    results: ClassVar[TaskResults] = classification_report  # its baseline, view, usage example and card lines
    inputs: ClassVar[InputKind] = TEXTS  # what its model reads and returns; export checks it on samples
    corrects_label_prior: ClassVar[bool] = True  # an adapted model's label_prior.json shifts its logits
    does: ClassVar[str] = "classifies"  # what its model does with texts, for messages

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        return label_rows(facts.label_names)

    def __init__(self, config: ClassificationTask) -> None:
        self.config = config

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        notes: list[str] = []
        columns = [c for c in (config.text, config.text_pair, config.label) if c]
        for name, split in data.splits.items():
            check_columns(
                split, name, data, [("text", config.text), ("text_pair", config.text_pair), ("label", config.label)]
            )
            check_kinds(split, where(name, data), text_fields(config), ("task.label", config.label))
            count_unusable(split, name, data, columns, self._usable, notes)
        declared = declared_names(config, data)
        label_ids = self._label_ids(data, declared)
        names = declared if declared is not None else [str(v) for v, _ in sorted(label_ids.items(), key=lambda x: x[1])]
        weights = class_weights(config.class_weights, self._train_counts(data, label_ids), names, notes)

        def labels_of(batch: Batch, rows: list[int]) -> list[int]:
            return [label_ids[normalise_label(batch[config.label][i])] for i in rows]

        settings = {
            "task": "classification",
            "label": config.label,
            "labels": sorted((str(k), v) for k, v in label_ids.items()),
        }
        tokenized, hits, keys = tokenize_splits(
            data,
            tokenizer,
            config,
            usable=self._usable,
            labels_of=labels_of,
            settings=settings,
            pad_to_max_length=pad_to_max_length,
            notes=notes,
        )
        extras: list[LoadedMetric] = []
        return PreparedTask(
            splits=tokenized,
            model_kwargs={
                "num_labels": len(names),
                "id2label": dict(enumerate(names)),
                "label2id": {name: i for i, name in enumerate(names)},
            },
            batch_metrics_for=metrics_for(TextInputs.of(config), scorer(names, extras)),
            label_names=names,
            notes=notes,
            cache_hits=hits,
            keys=keys,
            resolved={"class_weights": weights} if weights is not None else {},
            loss=weighted_cross_entropy(weights),
            extra_metrics=extras,
        )

    def _usable(self, batch: Batch, i: int) -> bool:
        """A row trains only with non-empty text(s) and a label."""
        label = batch[self.config.label][i]
        return has_texts(self.config, batch, i) and label is not None and str(label).strip() != ""

    def _train_counts(self, data: LoadedData, label_ids: dict[LabelValue, int]) -> list[int]:
        values = [v for v in data.splits["train"][self.config.label] if v is not None and str(v).strip()]
        counts = Counter(label_ids[normalise_label(v)] for v in values)
        return [counts.get(i, 0) for i in range(max(label_ids.values()) + 1)]

    def _label_ids(self, data: LoadedData, declared: list[str] | None) -> dict[LabelValue, int]:
        """Map label values to ids. Int labels keep their value when task.labels names them; else sorted order."""
        column = self.config.label
        labels = {
            name: [v for v in split[column] if v is not None and str(v).strip()] for name, split in data.splits.items()
        }
        train_counts = Counter(normalise_label(v) for v in labels["train"])
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
        source = "task.labels_file" if self.config.labels_file is not None else "task.labels"
        for name, values in labels.items():
            unknown = Counter(v for v in map(normalise_label, values) if v not in mapping)
            if unknown:
                seen = ", ".join(f"{v!r} ({n} rows)" for v, n in unknown.most_common(5))
                known = ", ".join(repr(v) for v in mapping)
                among = source if declared is not None and name == "train" else "the training labels"
                raise UserError(
                    f"{where(name, data)}: labels {seen} are not among {among} [{known}]; "
                    f"fix the data or list every class in {source}"
                )
        return mapping


def class_weights(
    setting: str | list[float], counts: Sequence[int], names: list[str], notes: list[str], what: str = "class"
) -> list[float] | None:
    """The recipe's class_weights resolved: None (no weights), balanced from the training counts, or as given."""
    if setting == "none":
        return None
    if isinstance(setting, list):
        if len(setting) != len(names):
            raise UserError(
                f"task.class_weights: {len(setting)} weights for {len(names)} {what}es ({', '.join(names)}); "
                f"give one weight per {what}, in label order"
            )
        return [float(w) for w in setting]
    total, present = sum(counts), [c for c in counts if c > 0]
    weights = [total / (len(present) * c) if c > 0 else 1.0 for c in counts]
    absent = [names[i] for i, c in enumerate(counts) if c == 0]
    if absent:
        notes.append(f"class weights: {', '.join(absent)} never occur in train; weight 1.0")
    notes.append("class weights (balanced): " + ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=True)))
    return weights


def weighted_cross_entropy(weights: list[float] | None) -> LossOnLogits | None:
    """Cross-entropy with one weight per class (None: the model's own, unweighted loss): the mean over examples of
    each example's loss times its class's weight. A mean over examples (not torch's sum of weights as divisor) adds
    up over micro-batches by their share of examples, so sub-batches train and log exactly the whole batch's loss."""
    if weights is None:
        return None
    table = torch.tensor(weights, dtype=torch.float32)

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        each = torch.nn.functional.cross_entropy(logits.float(), labels.long(), reduction="none")
        return (each * table.to(logits.device)[labels.long()]).mean()

    return loss


def scorer(names: list[str], extras: list[LoadedMetric]) -> Any:
    """Score (text_inputs' pooled logits (N, K), gold ids (N,)) -> accuracy, macro-F1, per-class and extra metrics."""

    def score(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        predicted = np.asarray(logits).argmax(axis=-1)
        metrics = classification_metrics(np.asarray(labels), predicted, names)
        return metrics | extra_scores(extras, predicted.tolist(), np.asarray(labels).tolist(), set(metrics))

    return score


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


def label_rows(names: list[str]) -> Decoder:
    """Each text's label, its probability and every label's: from (B, K) logits (label prior already applied)."""

    def decode(items: list[Row], logits: torch.Tensor) -> list[Row]:
        rows = []
        for item, probabilities in zip(items, logits.softmax(dim=-1).tolist(), strict=True):
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            rows.append(
                item
                | {
                    "label": names[best],
                    "probability": round(probabilities[best], 6),
                    "probabilities": {names[i]: round(p, 6) for i, p in enumerate(probabilities)},
                }
            )
        return rows

    return decode
