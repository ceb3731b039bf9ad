"""Evaluation of the text tasks, batch by batch (TrainingArguments.batch_eval_metrics): each batch's outputs (B, K)
are kept (a few numbers per text, never the hidden states), and the last call pools the windows of each text
(truncation: windows) and scores the texts with the task's `Score`. The same Score serves `nlp-transfer evaluate`,
so a run's eval metrics and evaluate's on the same file agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from transformers import EvalPrediction

from nlp_transfer.tasks.text_inputs import TextInputs, document_ids, pool_windows

Score = Callable[[np.ndarray, np.ndarray], dict[str, float]]  # (outputs (N, K), labels of the N texts) -> metrics


def numpy_of(value: Any) -> np.ndarray:
    """A torch tensor (any device or dtype; bf16 becomes float32) or an array, as numpy, keeping integer labels."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        return (value.float() if value.is_floating_point() else value).numpy()
    return np.asarray(value)


class PooledMetrics:
    """compute_metrics(EvalPrediction, compute_result) for one evaluation of one split."""

    def __init__(self, score: Score, documents: list[int] | None, pooling: str) -> None:
        self.score = score
        self.documents = documents  # windows: the text of each row; None: one row per text
        self.pooling = pooling
        self.outputs: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        # The last scored evaluation, one row per text (windows pooled): what report.report draws its views from.
        self.predictions: np.ndarray | None = None
        self.label_ids: np.ndarray | None = None

    def __call__(self, prediction: EvalPrediction, compute_result: bool = True) -> dict[str, float]:
        outputs = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        self.outputs.append(numpy_of(outputs))
        self.labels.append(numpy_of(prediction.label_ids))
        if not compute_result:
            return {}
        outputs, labels = np.concatenate(self.outputs), np.concatenate(self.labels)
        self.outputs, self.labels = [], []
        if self.documents is not None:
            pooled, kept = pool_windows(outputs, labels, self.documents[: len(outputs)], self.pooling)
            assert kept is not None
            outputs, labels = pooled, kept
        self.predictions, self.label_ids = outputs, labels
        return self.score(outputs, labels)


def metrics_for(inputs: TextInputs, score: Score) -> Callable[[Any], PooledMetrics]:
    """PreparedTask.batch_metrics_for: a fresh PooledMetrics for the split about to be evaluated."""

    def build(dataset: Any) -> PooledMetrics:
        return PooledMetrics(score, document_ids(dataset) if inputs.windowed else None, inputs.window_pooling)

    return build
