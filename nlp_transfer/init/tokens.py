"""`init` on tagged words: a CoNLL column file, JSONL rows with token and tag lists, or texts with entity spans ->
a token_classification recipe (the tag scheme and entity types found, a window length from the sentence lengths)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlp_transfer.init.defaults import Proposal, splits, training
from nlp_transfer.init.profile import Profile
from nlp_transfer.tasks.token_classification.tags import detect_scheme, split_tag


def looks_tagged(profile: Profile, options: Any) -> bool:
    columns = profile.columns
    lists = {name for name, column in columns.items() if column.kind == "list"}
    return (
        options.task == "token_classification"
        or {"tokens", "tags"} <= lists
        or ("entities" in lists and "text" in columns)
    )


def token_proposal(profile: Profile, options: Any) -> Proposal:
    proposal = Proposal(task={"name": "token_classification"}, data={}, train={})
    columns = profile.columns
    if "tokens" in columns and "tags" in columns:
        tags = [list(map(str, t)) for t in profile.rows["tags"]]
        scheme = detect_scheme(tags)
        kinds = sorted({split_tag(t)[1] or t for s in tags for t in s if t != "O"})
        converted = ", read as such and converted to IOB2" if scheme in ("iob1", "bioes") else ""
        proposal.say("task.name", f"token_classification: word and tag columns ({scheme.upper()} tags{converted})")
        words = np.asarray([len(s) for s in profile.rows["tokens"]])
    else:
        proposal.task |= {"text": "text", "entities": "entities"}
        spans = [s or [] for s in profile.rows["entities"]]
        kinds = sorted({str(span[2]) for row in spans for span in row if len(span) == 3})
        proposal.say("task.text", "text with [start, end, type] character spans: converted to IOB2 tags of its words")
        words = np.asarray([len(str(t).split()) for t in profile.rows["text"]])
    proposal.about.append(f"{len(profile.rows):,} sentences; entity types: {', '.join(kinds) or 'none'}")
    # Sub-words: about 1.5 per word for English WordPiece; windows read anything longer, so no word is lost.
    longest = float(np.percentile(words, 99)) * 1.5 + 2 if len(words) else 64
    proposal.task["max_length"] = next((n for n in (64, 128, 256) if n >= longest), 256)
    proposal.say("task.max_length", f"99% of the sentences have at most {np.percentile(words, 99):.0f} words")
    rows = splits(profile, proposal, options)
    training(rows, options, proposal)
    return proposal
