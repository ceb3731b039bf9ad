"""Words -> sub-word model inputs: labels on the first sub-word of each word (or on every sub-word), and sentences
longer than max_length split into overlapping windows of whole words, so that no word is dropped.

Each window row carries `word_ids`: per token, the index of the word in its sentence whose prediction it gives
(the first sub-word of each word; -1 elsewhere), which is how evaluation and predict merge windows per word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IGNORED = -100  # the label cross-entropy ignores (special tokens, later sub-words)
NO_WORD = -1


@dataclass(frozen=True)
class Window:
    sentence: int  # index of the sentence in the batch
    first_word: int  # index in the sentence of the window's first word
    encoding: dict[str, list[int]]
    word_ids: list[int]  # per token: the sentence's word index at its first sub-word, NO_WORD elsewhere
    sub_words: list[int | None]  # per token: the sentence's word index of every sub-word (None: special token)


def word_spans(counts: Sequence[int], room: int, stride: int) -> list[tuple[int, int]]:
    """[first, last) word ranges whose sub-words fit `room` tokens, consecutive ranges sharing about `stride` tokens
    of words. A single word longer than the room gets a window of its own (its sub-words truncated; its first
    sub-word, which carries its label, is kept)."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(counts):
        end, used = start, 0
        while end < len(counts) and (used + counts[end] <= room or end == start):
            used += counts[end]
            end += 1
        spans.append((start, end))
        if end >= len(counts):
            break
        back, shared = end, 0
        while back - 1 > start and shared + counts[back - 1] <= stride:
            back -= 1
            shared += counts[back]
        start = back
    return spans


def encode_words(tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int, stride: int) -> list[Window]:
    """Every sentence as one window, or several when its sub-words do not fit max_length."""
    whole = tokenizer(list(map(list, sentences)), is_split_into_words=True, truncation=False)
    room = max_length - tokenizer.num_special_tokens_to_add()
    windows: list[Window] = []
    for s, words in enumerate(sentences):
        ids = whole.word_ids(s)
        if len(ids) <= max_length:
            windows.append(_window(s, 0, {k: list(v[s]) for k, v in whole.items()}, ids))
            continue
        counts = [0] * len(words)
        for w in ids:
            if w is not None:
                counts[w] += 1
        for first, last in word_spans(counts, room, stride):
            part = tokenizer(list(words[first:last]), is_split_into_words=True, truncation=True, max_length=max_length)
            shifted = [None if w is None else w + first for w in part.word_ids()]
            windows.append(_window(s, first, dict(part), shifted))
    return windows


def _window(sentence: int, first: int, encoding: dict[str, Any], sub_words: list[int | None]) -> Window:
    word_ids, previous = [], None
    for w in sub_words:
        word_ids.append(w if w is not None and w != previous else NO_WORD)
        previous = w
    return Window(sentence, first, {k: list(v) for k, v in encoding.items()}, word_ids, list(sub_words))


def token_labels(window: Window, tag_ids: Sequence[int], all_subwords: bool, inside_of: dict[int, int]) -> list[int]:
    """The labels of a window's tokens: the word's tag id at its first sub-word; at later sub-words IGNORED, or (with
    label_all_subwords) the word's tag with B- turned into I- (inside_of maps B-X's id to I-X's)."""
    labels = []
    for first, word in zip(window.word_ids, window.sub_words, strict=True):
        if word is None:
            labels.append(IGNORED)
        elif first != NO_WORD:
            labels.append(tag_ids[word])
        elif all_subwords:
            labels.append(inside_of.get(tag_ids[word], tag_ids[word]))
        else:
            labels.append(IGNORED)
    return labels
