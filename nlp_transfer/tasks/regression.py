"""Regression: a text -> one number or several (a rating; EmoBank's valence, arousal and dominance at once).

Targets train standardised, (y - mean) / std with the training targets' mean and std, so every target weighs the
same in the mean squared error whatever its units; the scale is written into the model's config (`target_mean`,
`target_std`) and undone by predict, evaluate and the metrics, which are in the targets' own units."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import RegressionTask
from nlp_transfer.tasks import regression_report
from nlp_transfer.tasks.base import PreparedTask
from nlp_transfer.tasks.evaluation import metrics_for
from nlp_transfer.tasks.extra_metrics import LoadedMetric, extra_scores
from nlp_transfer.tasks.input_kinds import TEXTS, InputKind
from nlp_transfer.tasks.metrics import regression_metrics
from nlp_transfer.tasks.predictions import Decoder, ModelFacts, Row
from nlp_transfer.tasks.results import TaskResults
from nlp_transfer.tasks.text_inputs import TextInputs
from nlp_transfer.tasks.text_rows import (
    Batch,
    check_columns,
    check_kinds,
    has_texts,
    text_fields,
    tokenize_splits,
    where,
)


class Regression:
    auto_model_class: ClassVar[Any] = AutoModelForSequenceClassification  # its head: one linear output per target
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    pipeline_tag: ClassVar[str] = "text-classification"  # the Hub's tag for sequence-level heads, regression too
    pooled_features: ClassVar[bool] = True
    predict_example: ClassVar[str] = '"your text here"'
    padding_side: ClassVar[str | None] = None  # the tokenizer's own

    results: ClassVar[TaskResults] = regression_report  # its baseline, view, usage example and card lines
    inputs: ClassVar[InputKind] = TEXTS  # what its model reads and returns; export checks it on samples
    corrects_label_prior: ClassVar[bool] = False  # an adapted model's label_prior.json shifts its logits
    does: ClassVar[str] = "scores"  # what its model does with texts, for messages

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        mean, std = target_scale(facts.config, facts.origin)
        return number_rows(facts.label_names, mean, std)

    def __init__(self, config: RegressionTask) -> None:
        self.config = config
        self.targets = config.label if isinstance(config.label, list) else [config.label]

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        notes: list[str] = []
        for name, split in data.splits.items():
            fields = [("text", config.text), ("text_pair", config.text_pair)]
            check_columns(split, name, data, fields + [("label", c) for c in self.targets])
            check_kinds(split, where(name, data), text_fields(config))
            self._check_targets(split, name, data)
            texts = split.select_columns([c for c in (config.text, config.text_pair) if c]).to_dict()
            empty = sum(not has_texts(config, texts, i) for i in range(len(split)))
            if empty == len(split):
                raise UserError(f"{where(name, data)}: no usable rows (every text is empty)")
            if empty:
                notes.append(f"{name}: skipped {empty} of {len(split)} rows with an empty text")
        train = np.array([data.splits["train"][c] for c in self.targets], dtype=np.float64).T  # (N, T)
        mean, std = scale(train, self.targets, config.standardize)
        notes.append(
            "targets "
            + ("standardised: " if config.standardize else "as they are: ")
            + ", ".join(f"{t} mean {m:.4g} std {s:.4g}" for t, m, s in zip(self.targets, mean, std, strict=True))
        )

        def labels_of(batch: Batch, rows: list[int]) -> list[list[float]]:
            values = np.array([[float(batch[c][i]) for c in self.targets] for i in rows]).reshape(len(rows), -1)
            return ((values - mean) / std).tolist()

        tokenized, hits, keys = tokenize_splits(
            data,
            tokenizer,
            config,
            usable=lambda batch, i: has_texts(config, batch, i),
            labels_of=labels_of,
            settings={"task": "regression", "targets": self.targets, "mean": list(mean), "std": list(std)},
            pad_to_max_length=pad_to_max_length,
            notes=notes,
        )
        extras: list[LoadedMetric] = []
        return PreparedTask(
            splits=tokenized,
            model_kwargs={
                "num_labels": len(self.targets),
                "id2label": dict(enumerate(self.targets)),
                "label2id": {name: i for i, name in enumerate(self.targets)},
                "problem_type": "regression",
            },
            config_attributes={"target_mean": list(mean), "target_std": list(std)},
            batch_metrics_for=metrics_for(TextInputs.of(config), scorer(self.targets, mean, std, extras)),
            label_names=self.targets,
            notes=notes,
            cache_hits=hits,
            keys=keys,
            resolved={"target_mean": list(mean), "target_std": list(std)},
            loss=mean_squared_error,
            extra_metrics=extras,
        )

    def _check_targets(self, split: Any, name: str, data: LoadedData) -> None:
        """Every target a finite number: text, NaN or an infinite value is a one-line error naming the row."""
        for column in self.targets:
            for row, value in enumerate(split[column]):
                number = _number(value)
                if number is None or not math.isfinite(number):
                    what = "empty" if value is None else f"{value!r}, not a finite number"
                    text = str(split[row][self.config.text])
                    raise UserError(
                        f"{where(name, data)}: in the row with text {_snippet(text)!r}, column '{column}' (task.label) "
                        f"is {what}; a regression target must be a number in every row (fix the data or remove the row)"
                    )


def _snippet(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def scale(train: np.ndarray, targets: list[str], standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per target; (0, 1) when not standardising. A constant target cannot be learned or scaled."""
    if not standardize:
        return np.zeros(len(targets)), np.ones(len(targets))
    mean, std = train.mean(axis=0), train.std(axis=0)
    constant = [t for t, s in zip(targets, std, strict=True) if s == 0]
    if constant:
        raise UserError(
            f"data.train: target {', '.join(constant)} has the same value in every row; there is nothing to learn "
            "(check task.label)"
        )
    return mean, std


def mean_squared_error(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """outputs (B, T) and standardised targets (B, T)."""
    return torch.nn.functional.mse_loss(outputs.float(), labels.float().view(outputs.shape))


def unscaled(outputs: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """Model outputs (N, T) in the targets' units."""
    return np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1) * np.asarray(std) + np.asarray(mean)


def scorer(targets: list[str], mean: np.ndarray, std: np.ndarray, extras: list[LoadedMetric]) -> Any:
    """Score (outputs (N, T), standardised targets (N, T)) -> the metrics in the targets' units."""

    def score(outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        predicted, truth = unscaled(outputs, mean, std), unscaled(labels, mean, std)
        metrics = regression_metrics(truth, predicted, targets)
        for index, target in enumerate(targets):
            suffix = f"_{target}" if len(targets) > 1 else ""
            metrics |= extra_scores(
                extras, predicted[:, index].tolist(), truth[:, index].tolist(), set(metrics), suffix
            )
        return metrics

    return score


def target_scale(config: Any, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """The regression targets' (mean, std) from the model's config."""
    mean, std = getattr(config, "target_mean", None), getattr(config, "target_std", None)
    if not isinstance(mean, list) or not isinstance(std, list) or not len(mean) == len(std) == config.num_labels:
        raise UserError(
            f"{origin}: the model's config has no target_mean/target_std for its {config.num_labels} outputs; it is "
            "not a complete regression model (copy config.json with the folder, or train the run again)"
        )
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


def number_rows(names: list[str], mean: np.ndarray, std: np.ndarray) -> Decoder:
    """Each target's value in its own units (the standardisation undone): from (B, T) outputs."""

    def decode(items: list[Row], outputs: torch.Tensor) -> list[Row]:
        rows = []
        for item, row in zip(items, unscaled(outputs.numpy(), mean, std), strict=True):
            named = {name: round(float(v), 6) for name, v in zip(names, row, strict=True)}
            single = {"value": named[names[0]]} if len(names) == 1 else {}
            rows.append(item | single | {"values": named})
        return rows

    return decode
