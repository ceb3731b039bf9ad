"""Choosing pseudo-labels: which unlabelled target texts to trust, and with which label.

The label prior shifts between domains (a movie-review model calls only about a third of electronics reviews
positive, though half are), so the model's argmax counts are not trusted: in balanced mode each class takes the
same number of texts, those the model finds most probable for that class. That corrects the prior the way the
pseudo-labels then teach the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PseudoLabel:
    index: int  # position in the target corpus
    label: int
    probability: float  # the model's probability of `label` for this text


def select_pseudo_labels(
    probabilities: np.ndarray, keep: int, *, balanced: bool, min_confidence: float
) -> list[PseudoLabel]:
    """At most `keep` texts of the (N, K) probabilities, each with a label; sorted by corpus index."""
    n, k = probabilities.shape
    keep = min(keep, n)
    if balanced:
        chosen = _balanced(probabilities, keep // k, min_confidence)
    else:
        labels = probabilities.argmax(axis=1)
        confidence = probabilities[np.arange(n), labels]
        order = np.argsort(-confidence, kind="stable")[:keep]
        chosen = [PseudoLabel(int(i), int(labels[i]), float(confidence[i])) for i in order]
        chosen = [p for p in chosen if p.probability >= min_confidence]
    return sorted(chosen, key=lambda p: p.index)


def _balanced(probabilities: np.ndarray, per_class: int, min_confidence: float) -> list[PseudoLabel]:
    """Each class's `per_class` most probable texts; a text claimed by two classes goes to the more probable."""
    n, k = probabilities.shape
    claims = sorted(((float(probabilities[i, c]), i, c) for c in range(k) for i in range(n)), reverse=True)
    taken: dict[int, PseudoLabel] = {}
    counts = [0] * k
    for probability, index, label in claims:
        if index in taken or counts[label] >= per_class or probability < min_confidence:
            continue
        taken[index] = PseudoLabel(index, label, probability)
        counts[label] += 1
    return list(taken.values())
