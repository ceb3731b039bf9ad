"""Token classification's kind of input (input_kinds.InputKind): a sentence's words, tokenized pre-split; a
quantized model is checked on the entities it finds, not only on each token's tag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nlp_transfer.tasks.input_kinds import SAMPLE_TEXTS, InputKind
from nlp_transfer.tasks.token_classification.tags import entities_of, repair, words_of


def word_samples(tokenizer: Any, max_length: int) -> Any:
    """The sample texts split into words and tokenized pre-split, as in training."""
    words = [[w.text for w in words_of(text)] or ["."] for text in SAMPLE_TEXTS]
    return tokenizer(
        words, is_split_into_words=True, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )


def entity_agreement(encoding: Any, labels: Sequence[str], expected: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """How far the int8 model's entities are the float model's on the sample inputs: |same| / |either| over every
    (sample, type, first word, last word); 1.0 when neither finds an entity. Logits (B, T, K) each."""
    shared, either = 0, 0
    for b in range(expected.shape[0]):
        firsts, previous = [], None
        for position, word in enumerate(encoding.word_ids(b)):
            if word is not None and word != previous:
                firsts.append(position)
            previous = word
        spans = [
            {
                (kind, first, last)
                for kind, first, last in entities_of(repair([labels[i] for i in logits[firsts].argmax(-1)]))
            }
            for logits in (expected[b], found[b])
        ]
        shared += len(spans[0] & spans[1])
        either += len(spans[0] | spans[1])
    return {"entity_agreement": round(shared / either if either else 1.0, 6)}


WORDS = InputKind("words", ("logits",), word_samples, entity_agreement)
