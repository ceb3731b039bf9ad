"""Pairs of labelled examples for contrastive fine-tuning (SetFit's recipe), drawn over label *sets*.

Every example's labels are a set: {y} for single-label classification, the labels marked 1 for multi-label. A pair
is positive when its two sets share a label and negative when they share none; its target similarity is the
Jaccard overlap |A & B| / |A | B| (1 or 0 for single-label). Each example starts `per_example` pairs, half with a
partner it shares a label with and half with one it shares none with, drawn with a seeded generator: the same seed
gives the same pairs, so a resumed run trains on the pairs it started with.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nlp_transfer.core.errors import UserError

NO_LABEL = -1  # a multi-label example with no label at all: it pairs positively with others that have none


@dataclass(frozen=True)
class Pair:
    first: int  # row index into the training split
    second: int
    similarity: float  # target cosine similarity: the Jaccard overlap of the two label sets


def label_sets(labels: Sequence[Any]) -> list[frozenset[int]]:
    """Training labels as sets: an int id (single-label) or a 0/1 row of length L (multi-label, float or int)."""
    sets = []
    for value in labels:
        if isinstance(value, list | tuple):
            chosen = frozenset(index for index, on in enumerate(value) if on >= 0.5)
            sets.append(chosen or frozenset({NO_LABEL}))
        else:
            sets.append(frozenset({int(value)}))
    return sets


def jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    return len(first & second) / len(first | second)


def check_pairable(sets: list[frozenset[int]], label_names: list[str], where: str) -> None:
    """Every example needs a partner that shares a label and one that shares none; say which label falls short."""
    partners = _partners(sets)
    for index, label_set in enumerate(sets):
        positives, negatives = partners[label_set]
        if not any(other != index for other in positives):
            names = ", ".join(_name(label, label_names) for label in sorted(label_set))
            raise UserError(
                f"method contrastive: {where} has only one example labelled {names}, and same-class pairs need at "
                "least 2 of each label; add examples (e.g. raise data.max_train_per_class) or use method probe"
            )
        if not negatives:
            raise UserError(
                f"method contrastive: every example of {where} shares a label with every other, so there are no "
                "different-class pairs; add examples of other labels"
            )


def draw_pairs(sets: list[frozenset[int]], per_example: int, seed: int) -> list[Pair]:
    """`per_example` pairs starting at each example (the odd one, if any, positive), in a seeded shuffled order.

    (N * per_example) pairs in all; check_pairable must have passed."""
    rng = random.Random(seed)
    partners = _partners(sets)
    positives_each = per_example - per_example // 2
    pairs: list[Pair] = []
    for index, label_set in enumerate(sets):
        same, other = partners[label_set]
        same = [j for j in same if j != index]
        for _ in range(positives_each):
            partner = rng.choice(same)
            pairs.append(Pair(index, partner, jaccard(label_set, sets[partner])))
        for _ in range(per_example // 2):
            partner = rng.choice(other)
            pairs.append(Pair(index, partner, 0.0))
    rng.shuffle(pairs)
    return pairs


def _partners(sets: list[frozenset[int]]) -> dict[frozenset[int], tuple[list[int], list[int]]]:
    """For each distinct label set: the examples sharing a label with it, and those sharing none."""
    found: dict[frozenset[int], tuple[list[int], list[int]]] = {}
    for label_set in dict.fromkeys(sets):
        shared = [j for j, other in enumerate(sets) if label_set & other]
        disjoint = [j for j, other in enumerate(sets) if not label_set & other]
        found[label_set] = (shared, disjoint)
    return found


def _name(label: int, names: list[str]) -> str:
    if label == NO_LABEL:
        return "no label"
    return repr(names[label]) if 0 <= label < len(names) else str(label)
