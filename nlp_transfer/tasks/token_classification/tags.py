"""Tags of words: which scheme a data set uses (IOB1, IOB2, BIOES, or plain tags), normalising entity tags to IOB2,
the label list, and character-offset entity spans turned into the tags of a text's words.

Every problem is a ValueError-free `TagProblem` message that the task turns into one UserError naming the file,
the sentence and the line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OUTSIDE = "O"
ENTITY_PREFIXES = frozenset("BIESLU")  # B-, I-, E-, S- (BIOES) and L-, U- (BILOU, the same scheme by other names)
# A word: letters/digits (with inner hyphens or apostrophes), or one punctuation character. Spans must start and end
# on these boundaries, so "Paris." gives the words "Paris" and "." and the span of "Paris" fits.
WORD = re.compile(r"\w+(?:[-'\u2019]\w+)*|[^\w\s]")


class TagProblem(Exception):
    """A tag or span that cannot be read: the message says what and how to fix it (the caller adds where)."""


def split_tag(tag: str) -> tuple[str, str]:
    """('B', 'PER') for 'B-PER'; ('O', '') for 'O'; ('', tag) for a tag without an entity prefix."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0].upper() in ENTITY_PREFIXES:
        return tag[0].upper(), tag[2:]
    return "", tag


def detect_scheme(sentences: Sequence[Sequence[str]]) -> str:
    """iob2, iob1, bioes or none (plain tags, e.g. part-of-speech), from the tags of a split."""
    prefixes: set[str] = set()
    starts_inside = False
    for tags in sentences:
        previous = OUTSIDE
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix == "":
                return "none"
            prefixes.add(prefix)
            if prefix == "I" and split_tag(previous)[1] != kind:
                starts_inside = True  # an entity opened by I-: IOB1 (B- only separates two entities of one type)
            previous = tag
    if prefixes & set("ESLU"):
        return "bioes"
    return "iob1" if starts_inside else "iob2"


def to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    """The tags in IOB2 (every entity starts with B-). Raises TagProblem (with the word's index) when a tag breaks
    the scheme: under iob2 an I- that opens an entity; under bioes an I-/E- that continues nothing."""
    if scheme == "none":
        return list(tags)
    result: list[str] = []
    previous_kind = ""  # the type of the entity the previous word belongs to ("" outside one)
    for index, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix == "":
            raise TagProblem(
                f"word {index + 1}: tag '{tag}' has no B-/I- prefix; set task.tag_scheme: none for plain tags"
            )
        if prefix == OUTSIDE:
            result.append(OUTSIDE)
            previous_kind = ""
            continue
        continues = kind == previous_kind
        if prefix in "IEL" and not continues and scheme in ("iob2", "bioes"):
            after = f"'{tags[index - 1]}'" if index else "the sentence start"
            fix = "set task.tag_scheme: iob1 (or auto) to read it as IOB1" if scheme == "iob2" else "fix the tag"
            raise TagProblem(f"word {index + 1}: '{tag}' follows {after}, which strict {scheme.upper()} forbids; {fix}")
        if prefix in "BSU" or not continues:
            result.append(f"B-{kind}")
        else:
            result.append(f"I-{kind}")
        # In BIOES an entity ends at E-/S-: the next word's I- would be a new (broken) entity.
        previous_kind = "" if prefix in "ESLU" else kind
    return result


def label_list(declared: Sequence[str] | None, sentences: Sequence[Sequence[str]], scheme: str) -> list[str]:
    """The model's labels in output order: the recipe's (entity types expanded to O, B-X, I-X; or full tags) or, by
    default, those found in the data (O first, then B-/I- of every type, types sorted)."""
    if declared is not None:
        if scheme == "none" or any(split_tag(t)[0] for t in declared):
            return list(declared)  # full tags as given (O, B-PER, ...; or plain tags)
        return [OUTSIDE, *(f"{p}-{kind}" for kind in declared for p in "BI")]
    found = sorted({tag for tags in sentences for tag in tags})
    if scheme == "none":
        return found
    kinds = sorted({split_tag(tag)[1] for tag in found if tag != OUTSIDE})
    return [OUTSIDE, *(f"{p}-{kind}" for kind in kinds for p in "BI")]


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # character offsets in the text
    end: int


def words_of(text: str) -> list[Word]:
    return [Word(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


def spans_to_tags(text: str, spans: Sequence[Any]) -> tuple[list[str], list[str]]:
    """(words, IOB2 tags) of a text with [start, end, type] character spans (end exclusive). A span must cover whole
    words, stay inside the text and overlap no other span."""
    words = words_of(text)
    tags = [OUTSIDE] * len(words)
    starts = {w.start: i for i, w in enumerate(words)}
    ends = {w.end: i for i, w in enumerate(words)}
    taken: list[tuple[int, int]] = []
    for span in spans:
        if not isinstance(span, (list, tuple)) or len(span) != 3:
            raise TagProblem(f"entity {span!r} is not [start, end, type]")
        start, end, kind = int(span[0]), int(span[1]), str(span[2])
        if start < 0 or end > len(text) or start >= end:
            raise TagProblem(
                f"entity [{start}, {end}, {kind}] runs past the text ({len(text)} characters) or is empty; "
                "spans are [start, end) character offsets"
            )
        if start not in starts or end not in ends:
            raise TagProblem(
                f"entity [{start}, {end}, {kind}] ({text[start:end]!r}) cuts a word "
                f"(words: {', '.join(repr(w.text) for w in words if w.end > start and w.start < end)}); "
                "spans must start and end on word boundaries"
            )
        for other in taken:
            if start < other[1] and other[0] < end:
                raise TagProblem(
                    f"entity [{start}, {end}, {kind}] overlaps the entity [{other[0]}, {other[1]}]; "
                    "entities may not overlap (keep one)"
                )
        taken.append((start, end))
        first, last = starts[start], ends[end]
        tags[first] = f"B-{kind}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{kind}"
    return [w.text for w in words], tags


def entities_of(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of every entity in IOB2 tags; an I- that opens an entity counts as its
    start (what conlleval does with a model's broken output)."""
    found: list[tuple[str, int, int]] = []
    open_kind, open_start = "", 0
    for index, tag in enumerate([*tags, OUTSIDE]):
        prefix, kind = split_tag(tag)
        if open_kind and (prefix != "I" or kind != open_kind):
            found.append((open_kind, open_start, index))
            open_kind = ""
        if prefix in ("B", "I") and not open_kind:
            open_kind, open_start = kind, index
    return found


def repair(tags: Sequence[str]) -> list[str]:
    """A model's predicted tags as valid IOB2: an I-X that opens an entity becomes B-X (conlleval's reading)."""
    return to_iob2(tags, "iob1")
