"""What a finished question-answering run says about its model: exact match and F1 on a SQuAD-style file (nlp-
transfer evaluate) and by the length of the gold answer, its card sentence, and the eval question with the shortest
passage as its usage example. QA has no trivial baseline worth stating."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError
from nlp_transfer.tasks import qa
from nlp_transfer.tasks.evaluations import Evaluation
from nlp_transfer.tasks.metrics import exact_match, squad_metrics, token_f1
from nlp_transfer.tasks.results import Canvas, CardFacts, Figure, View, ViewInputs, no_baseline

# Gold answer length (words) -> the bucket it is reported in.
ANSWER_LENGTHS = ((1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (10, "6-10"), (10**9, ">10"))


baseline = no_baseline  # none worth stating


def view(inputs: ViewInputs, canvas: Canvas) -> View:
    metric = inputs.captured  # tasks.qa.SpanMetrics of the last evaluation: every question's answer and golds
    answers = metric.merger.answers()
    buckets: dict[str, list[tuple[float, float]]] = {name: [] for _, name in ANSWER_LENGTHS}
    for question, gold in metric.golds.items():
        if not gold or question not in answers:
            continue
        text = answers[question].text or ""
        length = min(len(g.split()) for g in gold)
        name = next(name for limit, name in ANSWER_LENGTHS if length <= limit)
        buckets[name].append((max(exact_match(text, g) for g in gold), max(token_f1(text, g) for g in gold)))
    shown = {name: scores for name, scores in buckets.items() if scores}
    if not shown:
        return View()
    labels = [f"{name} ({len(scores)})" for name, scores in shown.items()]
    f1 = [100 * float(np.mean([s[1] for s in scores])) for scores in shown.values()]
    em = [100 * float(np.mean([s[0] for s in scores])) for scores in shown.values()]
    canvas.bars(
        labels, f1, inputs.folder / "answer_length.png", title="eval F1 by gold answer length (words)", ylabel="F1 (%)"
    )
    return View(
        figures=[Figure("answer_length.png", "Eval F1 by the length of the gold answer (questions per bucket)")],
        numbers={
            "f1_by_answer_length": dict(zip(labels, f1, strict=True)),
            "exact_match_by_answer_length": dict(zip(labels, em, strict=True)),
        },
    )


def example(rows: Any, task: Any) -> dict[str, str] | None:
    """The eval question with the shortest passage, for the model card's usage example."""
    sample = rows.select(range(min(len(rows), 200)))
    contexts = [c if isinstance(c, str) else "" for c in sample[task.context]]
    usable = [i for i, c in enumerate(contexts) if c.strip()]
    if not usable:
        return None
    best = min(usable, key=lambda i: len(contexts[i]))
    return {"question": str(sample[task.question][best]).strip(), "context": contexts[best].strip()}


def card_summary(facts: CardFacts) -> str:
    resolved = facts.resolved.get("unanswerable", facts.task.unanswerable)
    none = " It may answer that the passage holds no answer." if resolved is True else ""
    return (
        "Extractive question answering: given a question and a passage, it returns the span of the passage that "
        f"answers the question.{none}"
    )


def card_outputs(facts: CardFacts) -> list[str]:
    return []  # an answer is a span of the passage: no labels to list


def check_options(settings: dict[str, Any], origin: str, options: Any) -> None:
    """The columns a QA model reads are fixed: a column option does not apply, and is refused rather than ignored."""
    given = {"--text": options.text, "--text-pair": options.text_pair, "--label": options.label}
    for option, value in (given | {"--label-lines": options.label_lines}).items():
        if value is not None:
            raise UserError(
                f"evaluate {option}: {origin} answers questions from the file's {settings['question']}, "
                f"{settings['context']} and {settings['answers']} columns (SQuAD json or jsonl), so {option} does "
                "not apply; drop it"
            )


def evaluate(given: Evaluation) -> dict[str, Any]:
    """Exact match and F1 of the predicted answers against every gold answer (SQuAD's official definitions)."""
    task, rows = given.settings, given.rows
    needed = [task["question"], task["context"], task["answers"]]
    missing = [name for name in needed if name not in rows.column_names]
    if missing:
        raise UserError(
            f"{given.where}: no column {', '.join(repr(m) for m in missing)}; {given.origin} answers questions and is "
            f"evaluated on rows with {', '.join(needed)} (SQuAD json, or jsonl with those fields), but the file's "
            f"columns are {', '.join(rows.column_names)}. Pass a question-answering file"
        )
    question, context, answers = needed
    pairs = [{"question": str(r[question]).lstrip(), "context": str(r[context])} for r in rows]
    predicted = [row["answer"] or "" for row in given.predictor().predict(pairs)]
    golds = [[text for text, _ in qa.answer_pairs(value)] for value in rows[answers]]
    return {"rows": len(rows), "skipped": 0, "metrics": squad_metrics(predicted, golds)}


def decision(row: dict[str, Any]) -> Any:
    return (row["start"], row["end"])
