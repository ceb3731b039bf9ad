"""Predictors of the multi-label and regression tasks (entries of predict.PREDICTORS): every label above its tuned
threshold with all probabilities; or the numbers, in the targets' units."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.runfolder.folder import THRESHOLDS_FILE
from nlp_transfer.tasks.multi_label import sigmoid
from nlp_transfer.tasks.regression import unscaled
from nlp_transfer.tasks.thresholds import from_record
from nlp_transfer.use.inputs import Item
from nlp_transfer.use.text_items import TextItems
from nlp_transfer.use.text_outputs import TextModel
from nlp_transfer.use.trained import Trained


def label_names_of(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in range(len(config.id2label))]


def thresholds_of(folder: Path, names: list[str], origin: str) -> np.ndarray:
    """The decision thresholds a multi-label run tuned (thresholds.json); a folder without them cannot decide."""
    found = from_record(read_json_or_empty(folder / THRESHOLDS_FILE), names)
    if found is None:
        raise UserError(
            f"{origin}: {THRESHOLDS_FILE} is missing or does not give a threshold for every label; it is part of a "
            "multi-label model (copy it with the folder, or train the run again)"
        )
    return found


def target_scale(config: Any, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """The regression targets' (mean, std) from the model's config."""
    mean, std = getattr(config, "target_mean", None), getattr(config, "target_std", None)
    if not isinstance(mean, list) or not isinstance(std, list) or not len(mean) == len(std) == config.num_labels:
        raise UserError(
            f"{origin}: the model's config has no target_mean/target_std for its {config.num_labels} outputs; it is "
            "not a complete regression model (copy config.json with the folder, or train the run again)"
        )
    return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)


class LabelSetPredictor:
    """Multi-label: the labels whose probability reaches their threshold, and every label's probability."""

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.text_model = TextModel(trained, batch_size, runtime)
        self.items = TextItems(trained.task_settings, "labels")
        self.batch_size = batch_size
        self.names = label_names_of(self.text_model.config)
        self.thresholds = thresholds_of(trained.folder, self.names, trained.origin)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        probabilities = sigmoid(self.text_model.batch_outputs(*self.items.texts(batch)).numpy())
        rows = []
        for item, row in zip(batch, probabilities, strict=True):
            chosen = [name for name, p, t in zip(self.names, row, self.thresholds, strict=True) if p >= t]
            named = {name: round(float(p), 6) for name, p in zip(self.names, row, strict=True)}
            rows.append(self.items.echo(item) | {"labels": chosen, "probabilities": named})
        return rows


class NumberPredictor:
    """Regression: each target's value in its own units (the standardisation undone)."""

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.text_model = TextModel(trained, batch_size, runtime)
        self.items = TextItems(trained.task_settings, "scores")
        self.batch_size = batch_size
        self.names = label_names_of(self.text_model.config)
        self.mean, self.std = target_scale(self.text_model.config, trained.origin)

    def values(self, texts: list[str], pairs: list[str] | None = None) -> Iterator[np.ndarray]:
        """(batch, T) values in the targets' units, batch by batch."""
        for outputs in self.text_model.outputs(texts, pairs):
            yield unscaled(outputs.numpy(), self.mean, self.std)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        values = unscaled(self.text_model.batch_outputs(*self.items.texts(batch)).numpy(), self.mean, self.std)
        rows = []
        for item, row in zip(batch, values, strict=True):
            named = {name: round(float(v), 6) for name, v in zip(self.names, row, strict=True)}
            single = {"value": named[self.names[0]]} if len(self.names) == 1 else {}
            rows.append(self.items.echo(item) | single | {"values": named})
        return rows
