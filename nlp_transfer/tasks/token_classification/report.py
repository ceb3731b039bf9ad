"""What a finished token-classification run says about its model: its scores on a labelled file (nlp-transfer
evaluate), entity scores per type, a confusion of entity types with "missed" and "spurious", the eval sentences with
a wrong entity (errors.jsonl), what the card says the model does and which tags it outputs, and a sentence of the eval
data for its usage example. Its baseline: none worth stating (a constant tag finds no entity)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError
from nlp_transfer.tasks.evaluations import Evaluation, check_text_options
from nlp_transfer.tasks.results import Canvas, CardFacts, Figure, View, ViewInputs, no_baseline
from nlp_transfer.tasks.token_classification.scores import entity_scores, scores_of
from nlp_transfer.tasks.token_classification.tags import TagProblem, entities_of, repair, spans_to_tags, to_iob2

MAX_ERRORS = 500  # eval sentences kept in errors.jsonl


baseline = no_baseline  # none worth stating


def card_summary(facts: CardFacts) -> str:
    task, names = facts.task, facts.label_names
    scheme = facts.resolved.get("tag_scheme", task.tag_scheme)
    kinds = sorted({n[2:] for n in names if n[:2] in ("B-", "I-")})
    if scheme == "none" or not kinds:
        return f"Token classification: it gives every word one of {len(names)} tags: {', '.join(names)}."
    return (
        f"Named-entity recognition (token classification): it marks the entities of a text with their type, one of "
        f"{', '.join(kinds)} (IOB2 tags; `nlp-transfer predict` returns each entity's text, type, character offsets "
        f"and score). A sentence longer than {task.max_length} tokens is read in overlapping windows, merged per word."
    )


def card_outputs(facts: CardFacts) -> list[str]:
    return ["| id | tag |", "|---|---|", *[f"| {i} | {name} |" for i, name in enumerate(facts.label_names)], ""]


def example(rows: Any, task: Any) -> dict[str, str] | None:
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


def view(inputs: ViewInputs, canvas: Canvas) -> View:
    """Entity scores per type, a confusion of entity types with "missed" (a gold entity no prediction matches
    exactly) and "spurious" (a predicted entity no gold one matches), and errors.jsonl: the eval sentences with a
    wrong entity, gold and predicted entities marked [like this]TYPE."""
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
        if gold_spans != found_spans and len(errors) < MAX_ERRORS:
            words = metrics.words.get(sorted(metrics.gold)[sentence], [])
            errors.append(_error(sentence, words, gold_spans, found_spans))
    index = {name: i for i, name in enumerate(names)}
    canvas.confusion(
        np.asarray([index[g] for g, _ in pairs] or [0]),
        np.asarray([index[p] for _, p in pairs] or [0]),
        names,
        inputs.folder / "entity_confusion.png",
    )
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
        errors=errors,
    )


Spans = dict[tuple[int, int], str]  # (first word, end word) -> entity type


def _error(sentence: int, words: list[str], gold: Spans, found: Spans) -> dict[str, Any]:
    """One sentence of errors.jsonl: gold and predicted entities marked, and each wrong or missed entity."""
    wrong = [
        {"words": " ".join(words[a:b]), "gold": gold.get((a, b), "spurious"), "predicted": k}
        for (a, b), k in found.items()
        if gold.get((a, b)) != k
    ]
    missed = [
        {"words": " ".join(words[a:b]), "gold": k, "predicted": "missed"}
        for (a, b), k in gold.items()
        if (a, b) not in found
    ]
    marked = {"gold": _marked(words, gold), "predicted": _marked(words, found)}
    return {"sentence": sentence, **marked, "wrong": wrong + missed}


def _marked(words: list[str], spans: Spans) -> str:
    shown = list(words)
    for (a, b), kind in spans.items():
        if b <= len(shown) and a < b:
            shown[a] = "[" + shown[a]
            shown[b - 1] = shown[b - 1] + "]" + kind
    return " ".join(shown)


check_options = check_text_options


def evaluate(given: Evaluation) -> dict[str, Any]:
    """The scores training reports (entity P/R/F1, per type, word accuracy) on a CoNLL file or JSONL rows with token
    and tag lists (or text and entity spans)."""
    task, where = given.settings, given.where
    scheme = str(task.get("tag_scheme", "iob2"))
    words, gold = _labelled_sentences(given.rows, task, where)
    predictor = given.predictor()
    known = set(predictor.labels)
    for number, tags in enumerate(gold, start=1):
        unknown = sorted(set(tags) - known)
        if unknown:
            raise UserError(
                f"{where}: sentence {number}: tag '{unknown[0]}' is not one this model predicts "
                f"({', '.join(predictor.labels)}); evaluate it on data with the model's tags"
            )
    predicted = []
    for start in range(0, len(words), 256):  # a bounded number of sentences in memory at once
        for probabilities in predictor.word_probabilities(words[start : start + 256]):
            predicted.append([predictor.labels[i] for i in probabilities.argmax(-1)])
    return {"rows": len(words), "skipped": 0, "metrics": scores_of(scheme, gold, predicted)}


def _labelled_sentences(rows: Any, task: dict[str, Any], where: str) -> tuple[list[list[str]], list[list[str]]]:
    scheme = str(task.get("tag_scheme", "iob2"))
    columns: list[str] = list(rows.column_names)
    tokens, tags = str(task.get("tokens") or "tokens"), str(task.get("tags") or "tags")
    if tokens in columns and tags in columns:
        pairs = [(list(map(str, w)), list(map(str, t))) for w, t in zip(rows[tokens], rows[tags], strict=True)]
    elif "text" in columns and "entities" in columns:
        pairs = []
        for number, (text, spans) in enumerate(zip(rows["text"], rows["entities"], strict=True), start=1):
            try:
                pairs.append(spans_to_tags(str(text or ""), spans or []))
            except TagProblem as problem:
                raise UserError(f"{where}: row {number}: {problem}") from None
    else:
        raise UserError(
            f"{where}: this model tags words and is evaluated on a CoNLL file (WORD<TAB>TAG lines) or JSONL rows "
            f"with '{tokens}' and '{tags}' lists (or text and entities), but the file's columns are "
            f"{', '.join(columns)}"
        )
    gold = []
    for number, (w, t) in enumerate(pairs, start=1):
        if len(w) != len(t) or not w:
            raise UserError(f"{where}: sentence {number} has {len(w)} tokens and {len(t)} tags; one tag per token")
        try:
            gold.append(to_iob2(t, scheme))
        except TagProblem as problem:
            raise UserError(f"{where}: sentence {number}, {problem}") from None
    return [w for w, _ in pairs], gold


def decision(row: dict[str, Any]) -> Any:
    """The tags (when the row has them) and every entity's span and type."""
    return (row.get("tags"), [(entity["start"], entity["end"], entity["type"]) for entity in row["entities"]])
