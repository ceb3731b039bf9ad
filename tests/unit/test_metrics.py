"""Offline metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_transfer.tasks.metrics import classification_metrics


def test_binary_metrics_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    predictions = np.array([0, 1, 0, 1, 1, 0, 1, 1])
    m = classification_metrics(labels, predictions, ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(6 / 8)
    # neg: TP=2, predicted 3, support 3 -> P=2/3, R=2/3; pos: TP=4, predicted 5, support 5 -> P=R=4/5
    assert m["precision_neg"] == pytest.approx(2 / 3) and m["recall_neg"] == pytest.approx(2 / 3)
    assert m["precision_pos"] == pytest.approx(4 / 5) and m["recall_pos"] == pytest.approx(4 / 5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["support_pos"] == 5


def test_class_never_predicted_counts_zero_in_macro_f1() -> None:
    labels = np.array([0, 1, 2, 2])
    predictions = np.array([0, 1, 1, 1])
    m = classification_metrics(labels, predictions, ["a", "b", "c"])
    assert m["precision_c"] == 0.0 and m["recall_c"] == 0.0
    # a: F1=1; b: P=1/3, R=1 -> F1=0.5; c: 0
    assert m["macro_f1"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_agrees_with_sklearn_when_available() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 4, 200))
    m = classification_metrics(labels, predictions, ["w", "x", "y", "z"])
    assert m["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(labels, predictions, average="macro"))
    assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, predictions))
