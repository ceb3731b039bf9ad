"""Multi-label decision thresholds: a label is predicted when its probability reaches its threshold.

A fixed 0.5 suits a label that is present half the time; a label present in 0.2% of texts (GoEmotions' grief) may
never reach it. So thresholds are tuned on the eval split, per label (each label's own F1) or globally (one value
for macro-F1), over a grid of candidate values, and the tuned values are what the run folder keeps (thresholds.json)
and what the test evaluation, predict, evaluate and the model card use. A rare label's own threshold is fitted to
its few eval positives; task.threshold_shrinkage pulls it towards the global one, the more the rarer the label.
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


def tune(
    probabilities: np.ndarray, gold: np.ndarray, strategy: str, fixed: float, shrinkage: float = 0.0
) -> np.ndarray:
    """Thresholds (L,) for a strategy: per_label, global, or fixed (every label at `fixed`). A label without any
    positive eval text cannot be tuned and keeps `fixed` (or the global threshold, when shrinking)."""
    return tuned(probabilities, gold, strategy, fixed, shrinkage)["final"]


def tuned(
    probabilities: np.ndarray, gold: np.ndarray, strategy: str, fixed: float, shrinkage: float = 0.0
) -> dict[str, Any]:
    """The thresholds (final, (L,)) and, for per_label, how they were reached: each label's own best (own), the
    one best for macro-F1 (global) and the eval positives that weigh the first against the second (positives).

    Shrinkage k treats the global threshold as k more positives' worth of evidence: final = (n own + k global) /
    (n + k). A label's own best threshold on a handful of positives fits those texts (with 5 positives, moving the
    threshold past one of them changes F1 by 0.1 or more); the global one is fitted to every label's thousands."""
    labels = gold.shape[1]
    if strategy == "fixed" or len(gold) == 0:
        return {"final": np.full(labels, fixed)}
    scores = f1_per_threshold(probabilities, gold)  # (G, L)
    overall = _middle_of_best(scores.mean(axis=1))
    if strategy == "global":
        return {"final": np.full(labels, overall)}
    positives = gold.sum(axis=0).astype(float)
    own = np.array([_middle_of_best(scores[:, i]) if positives[i] > 0 else np.nan for i in range(labels)])
    if shrinkage <= 0:
        return {"final": np.where(positives > 0, own, fixed)}
    weight = positives / (positives + shrinkage)  # 0 without positives: the global threshold
    final = weight * np.nan_to_num(own, nan=overall) + (1 - weight) * overall
    return {"final": final, "own": own, "global": overall, "positives": positives}


class Decisions:
    """The thresholds a run uses. Until settled, every evaluation tunes them on what it evaluates (so the checkpoint
    kept is the one that is best with its own best thresholds: the recipe's thresholds, shrinkage included); settle()
    fixes those of the last evaluation, the final model on the eval split, for the test evaluation and for the run
    folder."""

    def __init__(self, names: list[str], strategy: str, fixed: float, shrinkage: float = 0.0) -> None:
        self.names, self.strategy, self.fixed, self.shrinkage = names, strategy, fixed, shrinkage
        self.settled: np.ndarray | None = None
        self.last: dict[str, Any] | None = None

    def thresholds(self, probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
        if self.settled is not None:
            return self.settled
        self.last = tuned(probabilities, gold, self.strategy, self.fixed, self.shrinkage)
        return np.asarray(self.last["final"])

    def settle(self) -> dict[str, Any]:
        last = self.last or {"final": np.full(len(self.names), self.fixed)}
        self.settled = np.asarray(last["final"])
        found = record(self.names, self.settled, self.strategy, tuned_on="eval")
        if "own" in last:  # shrunk: how each label's threshold was reached, for the card and for a reader
            found["shrinkage"] = self.shrinkage
            found["global_threshold"] = round(float(last["global"]), 4)
            found["own_thresholds"] = {
                name: None if np.isnan(t) else round(float(t), 4)
                for name, t in zip(self.names, last["own"], strict=True)
            }
            found["eval_positives"] = {name: int(n) for name, n in zip(self.names, last["positives"], strict=True)}
        return found


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
