"""Extractive QA between text and tokens: sliding windows over long contexts on the way in, the best answer span
back as text with character offsets on the way out.

A context longer than one window is cut into windows of `max_length` tokens (question + part of the context) that
overlap by `stride` tokens, so an answer cut by one window boundary lies whole in the next. Each window keeps the
character offsets of its context tokens; question and special tokens get NO_OFFSET, so no answer can start there.
The first token of a window (BERT's [CLS]) stands for "no answer in this window".

Post-processing keeps the n best start and end tokens of each window, scores every pair (start logit + end logit)
that is ordered and at most `max_answer_length` tokens long, and merges the windows of a question: its answer is the
best span over all of them, and for SQuAD v2 data "no answer" when the null score wins by more than a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

NO_OFFSET = (-1, -1)  # question, special and padding tokens: not part of the context
NULL_INDEX = 0  # the token whose start/end logits score "no answer" (BERT's [CLS], RoBERTa's <s>)


@dataclass(frozen=True)
class Window:
    """One window of one question: model inputs plus what maps its tokens back to the context."""

    example: int  # index of the question in its batch
    encoding: dict[str, list[int]]  # input_ids, attention_mask (and token_type_ids for BERT)
    offsets: list[tuple[int, int]]  # per token: (start, end) characters in the context, NO_OFFSET outside it


def question_lengths(tokenizer: PreTrainedTokenizerBase, questions: Sequence[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(list(questions), add_special_tokens=False)["input_ids"]]


def context_room(tokenizer: PreTrainedTokenizerBase, question_length: int, max_length: int) -> int:
    """Context tokens left in one window after the question and the special tokens."""
    return max_length - question_length - tokenizer.num_special_tokens_to_add(pair=True)


def windows(
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_length: int,
    stride: int,
) -> list[Window]:
    """Every window of every (question, context) pair, question first. Callers drop questions that leave no more
    than `stride` context tokens (context_room): the tokenizer cannot slide a window over them."""
    return overflowing_windows(
        tokenizer,
        [q.lstrip() for q in questions],  # SQuAD has questions with leading spaces that only waste tokens
        list(contexts),
        max_length=max_length,
        stride=stride,
    )


def overflowing_windows(
    tokenizer: PreTrainedTokenizerBase,
    first: Sequence[str],
    second: Sequence[str] | None,
    *,
    max_length: int,
    stride: int,
) -> list[Window]:
    """Windows of `max_length` tokens sliding over the last text of each example (the context of a QA pair; the
    text itself, or a pair's second text, in text classification), consecutive windows sharing `stride` tokens.
    Offsets are kept for the tokens of the text that slides, NO_OFFSET elsewhere."""
    encoded = tokenizer(
        list(first),
        list(second) if second is not None else None,
        truncation="only_second" if second is not None else True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        verbose=False,  # a long text is what windows are for: no "longer than the model's maximum" warning
    )
    sliding = 1 if second is not None else 0
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in encoded]
    result = []
    for i, example in enumerate(encoded["overflow_to_sample_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        offsets = [
            (int(start), int(end)) if sequence_ids[t] == sliding else NO_OFFSET
            for t, (start, end) in enumerate(encoded["offset_mapping"][i])
        ]
        result.append(Window(example, {n: list(encoded[n][i]) for n in names}, offsets))
    return result


def answer_tokens(offsets: Sequence[Sequence[int]], start_char: int, end_char: int) -> tuple[int, int]:
    """The first and last token of the answer characters [start_char, end_char) in this window, or
    (NULL_INDEX, NULL_INDEX) when the answer is not wholly inside the window's context."""
    inside = [t for t, (start, end) in enumerate(offsets) if start >= 0 and end > start]
    if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return NULL_INDEX, NULL_INDEX
    first = max(t for t in inside if offsets[t][0] <= start_char)
    last = min(t for t in inside if offsets[t][1] >= end_char)
    return first, last


@dataclass(frozen=True, order=True)
class Span:
    score: float  # start logit + end logit
    start: int  # characters in the context
    end: int


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[Sequence[int]],
    *,
    n_best: int,
    max_answer_length: int,
) -> list[Span]:
    """The n best answer spans of one window, best first. Logits may be longer than the window (batch padding)."""
    length = len(offsets)
    starts_at = np.array([s for s, _ in offsets]) if length else np.zeros(0, dtype=int)
    ends_at = np.array([e for _, e in offsets]) if length else np.zeros(0, dtype=int)
    in_context = starts_at >= 0
    start = np.where(in_context, start_logits[:length], -np.inf)  # (T,)
    end = np.where(in_context, end_logits[:length], -np.inf)
    top_starts = np.argsort(start)[::-1][:n_best]
    top_ends = np.argsort(end)[::-1][:n_best]
    spans = [
        Span(float(start[s] + end[e]), int(starts_at[s]), int(ends_at[e]))
        for s in top_starts
        for e in top_ends
        if in_context[s] and in_context[e] and s <= e < s + max_answer_length
    ]
    return sorted(spans, reverse=True)[:n_best]


def null_score(start_logits: np.ndarray, end_logits: np.ndarray) -> float:
    return float(start_logits[NULL_INDEX] + end_logits[NULL_INDEX])


@dataclass
class Answer:
    text: str | None  # None: the model says the context does not answer the question
    start: int | None  # characters in the context
    end: int | None
    score: float  # softmax over the candidates kept (best spans of every window, and "no answer" when allowed)
    logit: float  # start logit + end logit of the chosen span (or the null score)


@dataclass
class _Question:
    context: str
    spans: list[Span] = field(default_factory=list)
    null: float = np.inf  # the smallest null score over the windows (the window most sure an answer is in it)


class AnswerMerger:
    """Collects each window's best spans, then gives one answer per question: the best over all its windows."""

    def __init__(self, *, n_best: int, allow_null: bool, null_threshold: float) -> None:
        self.n_best = n_best
        self.allow_null = allow_null
        self.null_threshold = null_threshold
        self.questions: dict[int, _Question] = {}

    def add(self, question: int, context: str, spans: list[Span], null: float) -> None:
        entry = self.questions.setdefault(question, _Question(context))
        entry.spans = sorted(entry.spans + spans, reverse=True)[: self.n_best]
        entry.null = min(entry.null, null)

    def answers(self) -> dict[int, Answer]:
        return {index: self._answer(entry) for index, entry in self.questions.items()}

    def _answer(self, entry: _Question) -> Answer:
        scores = [s.score for s in entry.spans] + ([entry.null] if self.allow_null and np.isfinite(entry.null) else [])
        if not scores:  # no window had context tokens (a question longer than max_length)
            return Answer(None if self.allow_null else "", None, None, 0.0, float("-inf"))
        probabilities = np.exp(np.array(scores) - max(scores))
        probabilities /= probabilities.sum()
        best = entry.spans[0] if entry.spans else None
        if best is None or (self.allow_null and entry.null - best.score > self.null_threshold):
            return Answer(None, None, None, float(probabilities[-1]), entry.null)
        start, end = _strip(entry.context, best.start, best.end)
        return Answer(entry.context[start:end], start, end, float(probabilities[0]), best.score)


def _strip(context: str, start: int, end: int) -> tuple[int, int]:
    """Byte-level BPE tokens (GPT-2) carry their leading space; an answer starts at its first visible character."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


def as_numpy(logits: Any) -> np.ndarray:
    """Logits as float32 numpy, whether a torch tensor (any device or dtype) or already an array."""
    if hasattr(logits, "detach"):
        return logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float32)
