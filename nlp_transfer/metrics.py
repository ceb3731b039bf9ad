"""Offline metrics as pure functions of numpy arrays (no evaluate.load: it fetches metric scripts from the Hub)."""

from __future__ import annotations

import numpy as np


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict[str, float]:
    """Accuracy, macro-F1, and precision / recall / F1 / support per class (a class with no predictions has P=0).

    Macro-F1 averages F1 over every class in `label_names`, including classes absent from this eval set (F1=0 for
    them only when they were predicted; a class neither present nor predicted is left out, as scikit-learn does
    with labels=None).
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    result: dict[str, float] = {"accuracy": float((labels == predictions).mean()) if len(labels) else 0.0}
    f1_scores = []
    for class_id, name in enumerate(label_names):
        true_positive = float(np.sum((predictions == class_id) & (labels == class_id)))
        predicted = float(np.sum(predictions == class_id))
        support = float(np.sum(labels == class_id))
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[f"precision_{name}"] = precision
        result[f"recall_{name}"] = recall
        result[f"f1_{name}"] = f1
        result[f"support_{name}"] = support
        if support or predicted:
            f1_scores.append(f1)
    result["macro_f1"] = float(np.mean(f1_scores)) if f1_scores else 0.0
    return result
