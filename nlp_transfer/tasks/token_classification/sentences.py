"""Rows -> checked sentences: words and IOB2 tags, from token and tag lists or from a text with entity spans.

Each problem is one UserError naming the split's file, the sentence and its line (CoNLL files) or row (JSONL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import TokenClassificationTask
from nlp_transfer.tasks.text_rows import check_columns, where
from nlp_transfer.tasks.token_classification.tags import TagProblem, detect_scheme, spans_to_tags, split_tag, to_iob2


@dataclass(frozen=True)
class Sentences:
    words: list[list[str]]
    tags: list[list[str]]  # as read (before normalising to IOB2)
    places: list[str]  # "sentence 3 (line 17)", for messages


def read_split(split: datasets.Dataset, name: str, data: LoadedData, config: TokenClassificationTask) -> Sentences:
    if config.text is not None:
        check_columns(split, name, data, [("text", config.text), ("entities", config.entities)])
    else:
        check_columns(split, name, data, [("tokens", config.tokens), ("tags", config.tags)])
    lines = split["line"] if "line" in split.column_names else None
    places = [
        f"sentence {i + 1} ({'line ' + str(lines[i]) if lines is not None else 'row ' + str(i + 1)})"
        for i in range(len(split))
    ]
    words: list[list[str]] = []
    tags: list[list[str]] = []
    if config.text is not None:
        for place, text, spans in zip(places, split[config.text], split[config.entities], strict=True):
            try:
                found = spans_to_tags(str(text or ""), spans or [])
            except TagProblem as problem:
                raise UserError(f"{where(name, data)}: {place}: {problem}") from None
            words.append(found[0])
            tags.append(found[1])
    else:
        for place, tokens, row_tags in zip(places, split[config.tokens], split[config.tags], strict=True):
            words.append(_strings(tokens, place, name, data, f"task.tokens ('{config.tokens}')"))
            tags.append(_strings(row_tags, place, name, data, f"task.tags ('{config.tags}')"))
            if len(words[-1]) != len(tags[-1]):
                raise UserError(
                    f"{where(name, data)}: {place} has {len(words[-1])} tokens but {len(tags[-1])} tags; give every "
                    "token exactly one tag"
                )
    for place, sentence in zip(places, words, strict=True):
        if not sentence:
            raise UserError(f"{where(name, data)}: {place} is empty (no words); remove it or give it words")
    return Sentences(words, tags, places)


def _strings(value: Any, place: str, name: str, data: LoadedData, field: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise UserError(
            f"{where(name, data)}: {place}: {field} holds {type(value).__name__}, not a list; give one list per "
            'sentence (e.g. ["EU", "rejects"])'
        )
    return [str(v) for v in value]


def resolve_scheme(config: TokenClassificationTask, splits: dict[str, Sentences]) -> str:
    if config.tag_scheme != "auto":
        return config.tag_scheme
    return detect_scheme([t for s in splits.values() for t in s.tags])


def normalised(sentences: Sentences, scheme: str, name: str, data: LoadedData) -> list[list[str]]:
    """The split's tags in IOB2 (plain tags unchanged); a tag that breaks the scheme is an error naming it."""
    result = []
    for place, tags in zip(sentences.places, sentences.tags, strict=True):
        try:
            result.append(to_iob2(tags, scheme))
        except TagProblem as problem:
            raise UserError(f"{where(name, data)}: {place}, {problem}") from None
    return result


def check_known(
    tags: list[list[str]], places: list[str], labels: list[str], declared: bool, name: str, data: LoadedData
) -> None:
    """Every tag must be one the model has; a tag outside the label list is named with the fix."""
    known = set(labels)
    for place, sentence in zip(places, tags, strict=True):
        for index, tag in enumerate(sentence):
            if tag in known:
                continue
            kind = split_tag(tag)[1] or tag
            source = "task.labels lacks it: add" if declared else "the labels found in data.train lack it: add"
            raise UserError(
                f"{where(name, data)}: {place}, word {index + 1}: tag '{tag}' is not a label ({source} '{kind}' to "
                "task.labels, or fix the tag)"
            )
