"""Token classification's kind of input (input_kinds.InputKind): a sentence's words, tokenized pre-split."""

from __future__ import annotations

from typing import Any

from nlp_transfer.tasks.input_kinds import SAMPLE_TEXTS, TEXT_ROWS, InputKind
from nlp_transfer.tasks.token_classification.tags import words_of


def word_samples(tokenizer: Any, max_length: int) -> Any:
    """The sample texts split into words and tokenized pre-split, as in training."""
    words = [[w.text for w in words_of(text)] or ["."] for text in SAMPLE_TEXTS]
    return tokenizer(
        words, is_split_into_words=True, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )


WORDS = InputKind("words", ("logits",), word_samples, TEXT_ROWS)  # predict splits a text into its words
