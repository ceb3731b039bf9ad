"""Token classification in the run room (the entries of card_tasks.TASK_CARDS and views.EXAMPLES): what the card
says the model does and which tags it outputs, and a sentence of the eval data for its usage example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.runfolder.folder import TASK_FILE


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


def token_view(inputs: Any) -> Any:
    """views.VIEWS' entry: entity scores per type, a confusion of entity types with "missed" (a gold entity no
    prediction matches exactly) and "spurious" (a predicted entity no gold one matches), and errors.jsonl: the eval
    sentences with a wrong entity, gold and predicted entities marked [like this]TYPE."""
    # Imported here: views imports this module for its tables.
    from nlp_transfer.report import figures
    from nlp_transfer.report.views import Figure, View
    from nlp_transfer.runfolder.folder import ERRORS_FILE, RunFolder
    from nlp_transfer.tasks.token_classification.scores import entity_scores
    from nlp_transfer.tasks.token_classification.tags import entities_of, repair

    metrics = inputs.captured
    if not hasattr(metrics, "tags") or metrics.scheme == "none":
        return View()
    gold, predicted = metrics.tags()
    predicted = [repair(tags) for tags in predicted]
    kinds = sorted({n[2:] for n in metrics.label_names if n[:2] in ("B-", "I-")})
    names = [*kinds, "none"]  # row none: spurious predictions; column none: missed gold entities
    pairs: list[tuple[str, str]] = []  # (gold type, predicted type) per entity of either
    errors: list[dict[str, Any]] = []
    for sentence, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        gold_spans = {(a, b): k for k, a, b in entities_of(g)}
        found_spans = {(a, b): k for k, a, b in entities_of(p)}
        pairs += [(k, found_spans.get(span, "none")) for span, k in gold_spans.items()]
        pairs += [("none", k) for span, k in found_spans.items() if span not in gold_spans]
        if gold_spans != found_spans and len(errors) < 500:
            words = metrics.words.get(sorted(metrics.gold)[sentence], [])
            errors.append(
                {
                    "sentence": sentence,
                    "gold": _marked(words, gold_spans),
                    "predicted": _marked(words, found_spans),
                    "wrong": [
                        {"words": " ".join(words[a:b]), "gold": gold_spans.get((a, b), "spurious"), "predicted": k}
                        for (a, b), k in found_spans.items()
                        if gold_spans.get((a, b)) != k
                    ]
                    + [
                        {"words": " ".join(words[a:b]), "gold": k, "predicted": "missed"}
                        for (a, b), k in gold_spans.items()
                        if (a, b) not in found_spans
                    ],
                }
            )
    index = {name: i for i, name in enumerate(names)}
    figures.confusion(
        np.asarray([index[g] for g, _ in pairs] or [0]),
        np.asarray([index[p] for _, p in pairs] or [0]),
        names,
        inputs.folder / "entity_confusion.png",
    )
    RunFolder(inputs.folder).write_text(ERRORS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in errors))
    scores = entity_scores(gold, predicted)
    return View(
        figures=[
            Figure(
                "entity_confusion.png",
                "Entity types on the eval split: rows the gold type (none: a spurious prediction), columns the "
                "predicted type (none: a missed entity); an entity counts only with its exact words",
            )
        ],
        numbers={
            "per_type_f1": {k: round(scores.get(f"f1_{k}", 0.0), 4) for k in kinds},
            "missed": sum(1 for _, p in pairs if p == "none"),
            "spurious": sum(1 for g, _ in pairs if g == "none"),
            "sentences_with_errors": len(errors),
        },
    )


def _marked(words: list[str], spans: dict[tuple[int, int], str]) -> str:
    shown = list(words)
    for (a, b), kind in spans.items():
        if b <= len(shown) and a < b:
            shown[a] = "[" + shown[a]
            shown[b - 1] = shown[b - 1] + "]" + kind
    return " ".join(shown)
