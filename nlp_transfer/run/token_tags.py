"""Token classification in the run room (the entries of card_tasks.TASK_CARDS and views.EXAMPLES): what the card
says the model does and which tags it outputs, and a sentence of the eval data for its usage example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.run.folder import TASK_FILE


def token_what_it_does(task: Any, names: list[str], folder: Path) -> str:
    scheme = read_json_or_empty(folder / TASK_FILE).get("tag_scheme", task.tag_scheme)
    kinds = sorted({n[2:] for n in names if n[:2] in ("B-", "I-")})
    if scheme == "none" or not kinds:
        return f"Token classification: it gives every word one of {len(names)} tags: {', '.join(names)}."
    return (
        f"Named-entity recognition (token classification): it marks the entities of a text with their type, one of "
        f"{', '.join(kinds)} (IOB2 tags; `nlp-transfer predict` returns each entity's text, type, character offsets "
        f"and score). A sentence longer than {task.max_length} tokens is read in overlapping windows, merged per word."
    )


def token_outputs(task: Any, names: list[str], folder: Path) -> list[str]:
    return ["| id | tag |", "|---|---|", *[f"| {i} | {name} |" for i, name in enumerate(names)], ""]


def token_example(rows: Any, task: Any) -> dict[str, str] | None:
    """A short eval sentence with an entity, for the model card's usage example."""
    if task.text is not None:
        texts = [t for t in rows.select(range(min(len(rows), 200)))[task.text] if isinstance(t, str)]
        usable = [t.strip() for t in texts if 20 <= len(t.strip()) <= 160]
        return {"text": usable[0]} if usable else None
    sample = rows.select(range(min(len(rows), 200)))
    for words, tags in zip(sample[task.tokens], sample[task.tags], strict=True):
        text = " ".join(str(w) for w in words)
        if 20 <= len(text) <= 160 and any(str(t) != "O" for t in tags):
            return {"text": text}
    return None
