"""Token classification's prediction rows: the entities of each text (or pre-split sentence) with their type,
character offsets and score, and (pre-split input, or tags without a scheme) the tag of every word. A text is split
into words as training data in span format is (tags.words_of); pre-split words are joined by single spaces."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlp_transfer.tasks.predictions import Decoder, Row, echo
from nlp_transfer.tasks.token_classification.tags import Word, entities_of, repair, words_of


def item_words(item: Row) -> tuple[str, list[Word]]:
    """The text and its words with character offsets (pre-split words joined by single spaces)."""
    if "text" in item:
        return item["text"], words_of(item["text"])
    words, start = [], 0
    for token in item["tokens"]:
        words.append(Word(token, start, start + len(token)))
        start += len(token) + 1
    return " ".join(item["tokens"]), words


def tag_rows(labels: list[str], plain: bool) -> Decoder:
    """Rows from (words, K) tag probabilities per sentence; `plain`: tags without an entity scheme."""

    def decode(items: list[Row], probabilities: list[np.ndarray]) -> list[Row]:
        rows = []
        for item, found in zip(items, probabilities, strict=True):
            text, words = item_words(item)
            tags = [labels[i] for i in found.argmax(-1)]
            tags = tags if plain else repair(tags)
            row = echo(item, ("tokens", "tags"))
            row |= {"text": text, "entities": [] if plain else _entities(text, words, tags, found.max(-1))}
            if "tokens" in item or plain:
                row |= {"tokens": [w.text for w in words], "tags": tags}
            rows.append(row)
        return rows

    return decode


def _entities(text: str, words: list[Word], tags: list[str], scores: np.ndarray) -> list[dict[str, Any]]:
    found = []
    for kind, first, last in entities_of(tags):
        start, end = words[first].start, words[last - 1].end
        found.append(
            {
                "text": text[start:end],
                "type": kind,
                "start": start,
                "end": end,
                "score": round(float(scores[first:last].mean()), 6),
            }
        )
    return found
