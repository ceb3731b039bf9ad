"""Multi-label decision thresholds: a label is predicted when its probability reaches its threshold.

A fixed 0.5 suits a label that is present half the time; a label present in 0.2% of texts (GoEmotions' grief) may
never reach it. So thresholds are tuned on the eval split, per label (each label's own F1) or globally (one value
for macro-F1), over a grid of candidate values, and the tuned values are what the run folder keeps (thresholds.json)
and what the test evaluation, predict, evaluate and the model card use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THRESHOLDS_FILE = "thresholds.json"  # multi-label decision thresholds, tuned on the eval split; predict applies them
GRID = np.round(np.arange(0.02, 0.981, 0.01), 2)  # candidate thresholds


def f1_per_threshold(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """probabilities and gold (N, L) -> F1 of each label at each GRID threshold: (G, L). One label at a time, so
    memory stays (G, N) however many labels."""
    scores = np.zeros((len(GRID), gold.shape[1]))
    for label in range(gold.shape[1]):
        predicted = probabilities[None, :, label] >= GRID[:, None]  # (G, N)
        positive = gold[None, :, label].astype(bool)
        true_positives = (predicted & positive).sum(axis=1)  # (G,)
        wrong = (predicted != positive).sum(axis=1)  # false positives + false negatives
        denominator = 2 * true_positives + wrong
        scores[:, label] = np.where(denominator > 0, 2 * true_positives / np.maximum(denominator, 1), 0.0)
    return scores


def _middle_of_best(scores: np.ndarray) -> float:
    """The middle of the run of thresholds that reach the best score: ties are common on small eval sets, and the
    middle of a plateau is the choice least tied to the few texts at its edges."""
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(GRID[best[len(best) // 2]])


def tune(probabilities: np.ndarray, gold: np.ndarray, strategy: str, fixed: float) -> np.ndarray:
    """Thresholds (L,) for a strategy: per_label, global, or fixed (every label at `fixed`). A label without any
    positive eval text cannot be tuned and keeps `fixed`."""
    labels = gold.shape[1]
    if strategy == "fixed" or len(gold) == 0:
        return np.full(labels, fixed)
    scores = f1_per_threshold(probabilities, gold)  # (G, L)
    if strategy == "global":
        return np.full(labels, _middle_of_best(scores.mean(axis=1)))
    present = gold.sum(axis=0) > 0
    return np.array([_middle_of_best(scores[:, i]) if present[i] else fixed for i in range(labels)])


class Decisions:
    """The thresholds a run uses. Until settled, every evaluation tunes them on what it evaluates (so the checkpoint
    kept is the one that is best with its own best thresholds); settle() fixes those of the last evaluation, the
    final model on the eval split, for the test evaluation and for the run folder."""

    def __init__(self, names: list[str], strategy: str, fixed: float) -> None:
        self.names, self.strategy, self.fixed = names, strategy, fixed
        self.settled: np.ndarray | None = None
        self.last: np.ndarray | None = None

    def thresholds(self, probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
        if self.settled is not None:
            return self.settled
        self.last = tune(probabilities, gold, self.strategy, self.fixed)
        return self.last

    def settle(self) -> dict[str, Any]:
        self.settled = self.last if self.last is not None else np.full(len(self.names), self.fixed)
        return record(self.names, self.settled, self.strategy, tuned_on="eval")


def record(names: list[str], thresholds: np.ndarray, strategy: str, tuned_on: str) -> dict[str, Any]:
    """What thresholds.json holds."""
    return {
        "strategy": strategy,
        "tuned_on": tuned_on,
        "thresholds": {name: round(float(t), 4) for name, t in zip(names, thresholds, strict=True)},
    }


def from_record(found: dict[str, Any], names: list[str]) -> np.ndarray | None:
    """The thresholds of a thresholds.json in label order; None when it does not give one for every label."""
    given = found.get("thresholds")
    if not isinstance(given, dict) or any(not isinstance(given.get(n), int | float) for n in names):
        return None
    return np.array([float(given[n]) for n in names])
