"""Data augmentation for small training sets: seeded, altered copies of the training rows (OPERATIONS).

Whether it helps is an empirical question: studies of augmentation for pre-trained transformers often find little
gain (the README reports what `compare` measured here). Token operations need nothing; synonyms come from WordNet,
read from its data files (wordnet.py); contextual substitution asks a masked language model for a word that fits.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe.augment_spec import AugmentSpec

WORD = re.compile(r"\S+")
Operation = Callable[[list[str], int, random.Random], list[str]]  # (words, how many to change, rng) -> words


def delete(words: list[str], n: int, rng: random.Random) -> list[str]:
    if len(words) <= 1:
        return words
    drop = set(rng.sample(range(len(words)), min(n, len(words) - 1)))
    return [w for i, w in enumerate(words) if i not in drop]


def swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    words = list(words)
    for _ in range(n if len(words) > 1 else 0):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return words


def insert(words: list[str], n: int, rng: random.Random) -> list[str]:
    """A word of the same text inserted at a random place (no outside vocabulary needed)."""
    words = list(words)
    for _ in range(n if words else 0):
        words.insert(rng.randrange(len(words) + 1), rng.choice(words))
    return words


def synonym(words: list[str], n: int, rng: random.Random) -> list[str]:
    from nlp_transfer.data.wordnet import synonyms

    words = list(words)
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 2]
    rng.shuffle(candidates)
    changed = 0
    for i in candidates:
        found = [s for s in synonyms(words[i].lower()) if s != words[i].lower()]
        if found:
            words[i] = rng.choice(found)
            changed += 1
        if changed == n:
            break
    return words


OPERATIONS: dict[str, Operation] = {"delete": delete, "swap": swap, "insert": insert, "synonym": synonym}


def augment_training_split(
    data: LoadedData, spec: AugmentSpec, columns: list[str], seed: int, contextual: Operation | None = None
) -> None:
    """Append `spec.copies` altered copies of every training row (text columns changed, everything else kept);
    the provenance key and the notes say so."""
    operations = {name: OPERATIONS[name] for name in spec.operations if name in OPERATIONS}
    if "contextual" in spec.operations:
        if contextual is None:
            raise UserError("augment.operations: contextual needs a masked language model; set augment.mlm_model")
        operations["contextual"] = contextual
    if "synonym" in operations:
        from nlp_transfer.data.wordnet import check_available

        check_available()
    rng = random.Random(spec.seed if spec.seed is not None else seed)
    train = data.splits["train"]
    rows = train.to_dict()
    extra: dict[str, list[Any]] = {name: [] for name in rows}
    names = list(operations)
    for _ in range(spec.copies):
        for index in range(len(train)):
            operation = operations[rng.choice(names)]
            for name in rows:
                value = rows[name][index]
                if name in columns and isinstance(value, str) and value.strip():
                    words = WORD.findall(value)
                    value = " ".join(operation(words, max(1, round(spec.rate * len(words))), rng))
                extra[name].append(value)
    copies = datasets.Dataset.from_dict(extra, features=train.features)
    data.splits["train"] = datasets.concatenate_datasets([train, copies])
    data.keys["train"] = f"{data.keys.get('train', '')}+augment:{spec.model_dump_json()}:{seed}"
    data.notes.append(
        f"train: + {len(copies)} augmented copies ({spec.copies} per row; {', '.join(spec.operations)}; "
        f"rate {spec.rate:g})"
    )
