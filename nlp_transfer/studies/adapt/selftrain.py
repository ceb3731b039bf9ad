"""Choosing pseudo-labels: which unlabelled target texts to trust, and with which label.

The label prior shifts between domains (a movie-review model calls about a third of electronics reviews positive,
though half are), so the model's argmax counts are not trusted. Each class gets a quota of the texts kept, in the
proportions the target is believed to have (the prior estimated without labels, label_shift.py; or uniform), and
takes the texts the model finds most probable for it. The pseudo-labels then teach the student that prior, not the
source's.
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
    probabilities: np.ndarray, keep: int, *, shares: np.ndarray | None, min_confidence: float
) -> list[PseudoLabel]:
    """At most `keep` texts of the (N, K) probabilities, each with a label; sorted by corpus index. `shares` (K,)
    splits `keep` into per-class quotas; None keeps the most confident argmax predictions instead."""
    n, _ = probabilities.shape
    keep = min(keep, n)
    if shares is not None:
        chosen = _by_quota(probabilities, quotas(keep, shares), min_confidence)
    else:
        labels = probabilities.argmax(axis=1)
        confidence = probabilities[np.arange(n), labels]
        order = np.argsort(-confidence, kind="stable")[:keep]
        chosen = [PseudoLabel(int(i), int(labels[i]), float(confidence[i])) for i in order]
        chosen = [p for p in chosen if p.probability >= min_confidence]
    return sorted(chosen, key=lambda p: p.index)


def quotas(keep: int, shares: np.ndarray) -> list[int]:
    """`keep` split in proportion to `shares` (K,), by largest remainders: the quotas sum to `keep`, exactly."""
    exact = keep * np.asarray(shares, dtype=np.float64) / float(np.sum(shares))
    counts = np.floor(exact).astype(int)
    for label in np.argsort(-(exact - counts), kind="stable")[: keep - int(counts.sum())]:
        counts[label] += 1
    return [int(c) for c in counts]


def _by_quota(probabilities: np.ndarray, per_class: list[int], min_confidence: float) -> list[PseudoLabel]:
    """Each class's most probable texts, up to its quota; a text claimed by two classes goes to the more probable."""
    n, k = probabilities.shape
    claims = sorted(((float(probabilities[i, c]), i, c) for c in range(k) for i in range(n)), reverse=True)
    taken: dict[int, PseudoLabel] = {}
    counts = [0] * k
    for probability, index, label in claims:
        if index in taken or counts[label] >= per_class[label] or probability < min_confidence:
            continue
        taken[index] = PseudoLabel(index, label, probability)
        counts[label] += 1
    return list(taken.values())
