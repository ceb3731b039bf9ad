"""Each task's view of its eval predictions, drawn once at the end of a run (VIEWS, one entry per task):
classification: the confusion matrix, a calibration figure with its expected calibration error, and the eval
examples the model gets wrong most confidently (errors.jsonl); multi-label: F1 per label; regression: predicted
against true values per target; question answering: exact match and F1 by the length of the gold answer. A view
returns what it drew and the numbers it found; report.py puts them in report.html and the model card shows the
figures."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.report import figures
from nlp_transfer.report.token_tags import token_example, token_view
from nlp_transfer.runfolder.folder import ERRORS_FILE, RunFolder
from nlp_transfer.tasks.text_inputs import document_ids
from nlp_transfer.tasks.text_rows import has_texts

WORST_ERRORS = 50  # eval examples kept in errors.jsonl: the confidently wrong ones first


@dataclass
class Figure:
    file: str  # in the run folder
    caption: str


@dataclass
class View:
    figures: list[Figure] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class ViewInputs:
    """The last evaluation of the run: `captured` is what the task's metric saw (the predictions and labels of
    classification, the span metric object of QA); `tokenized` the eval split as the model read it."""

    folder: Path
    captured: Any
    tokenized: Any
    tokenizer: Any
    label_names: list[str]
    evaluation: dict[str, Any] = field(default_factory=dict)  # the eval metrics the run reports (eval_f1_<label>)
    model_settings: dict[str, Any] = field(default_factory=dict)  # config attributes (regression's target scale)
    source: EvalSource | None = None  # the user's eval rows, for errors.jsonl (None: decoded from the token ids)


@dataclass
class EvalSource:
    """The eval split as the user wrote it: `data` the run's LoadedData (its rows and where each came from),
    `task` the task's recipe section (which columns hold the texts and the label)."""

    data: Any
    task: Any

    def scored_rows(self, tokenized: Any) -> list[int]:
        """The eval rows the model was scored on, in scoring order: a text's windows (truncation: windows) are one
        text; rows without text or label were never scored."""
        documents = document_ids(tokenized)
        if documents is not None:
            return [int(d) for d in dict.fromkeys(documents)]  # a text's windows are consecutive, in text order
        rows = self.data.splits["eval"]
        batch = rows.select_columns([c for c in (self.task.text, self.task.text_pair, self.task.label) if c]).to_dict()
        return [i for i in range(len(rows)) if has_texts(self.task, batch, i) and _labelled(batch, self.task, i)]

    def text(self, index: int) -> dict[str, Any]:
        """Eval row `index` as the user wrote it: the text (and pair), the file and the row of that file."""
        row = self.data.splits["eval"][index]
        entry: dict[str, Any] = {"text": row[self.task.text]}
        if self.task.text_pair:
            entry["text_pair"] = row[self.task.text_pair]
        origin = self.data.origin("eval", index)
        return entry | ({"file": origin.source, "row": origin.row} if origin is not None else {})


def _labelled(batch: dict[str, list[Any]], task: Any, i: int) -> bool:
    value = batch[task.label][i]
    return value is not None and str(value).strip() != ""


def classification_view(inputs: ViewInputs) -> View:
    logits = inputs.captured.predictions
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)  # (N, K)
    gold = np.asarray(inputs.captured.label_ids).astype(int)  # (N,)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    names = inputs.label_names
    figures.confusion(gold, predicted, names, inputs.folder / "confusion.png")
    _, ece = figures.calibration(confidence, predicted == gold, inputs.folder / "calibration.png")
    wrong = np.flatnonzero(predicted != gold)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")][:WORST_ERRORS]
    # The user's own text and where it is in their file; without the source, the text as the model read it.
    scored = inputs.source.scored_rows(inputs.tokenized) if inputs.source is not None else None
    rows = [
        {
            **(
                inputs.source.text(scored[i])
                if inputs.source is not None and scored is not None
                else _texts(inputs.tokenized, inputs.tokenizer, int(i))
            ),
            "label": names[gold[i]],
            "predicted": names[predicted[i]],
            "probability": round(float(confidence[i]), 4),
        }
        for i in worst
    ]
    RunFolder(inputs.folder).write_text(ERRORS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return View(
        figures=[
            Figure("confusion.png", "Confusion matrix on the eval split, normalised per true class"),
            Figure("calibration.png", f"Calibration on the eval split (expected calibration error {ece:.3f})"),
        ],
        numbers={"expected_calibration_error": round(ece, 4), "eval_errors": len(wrong)},
    )


def _texts(tokenized: Any, tokenizer: Any, row: int) -> dict[str, Any]:
    """The text (and pair) as the model saw it: decoded from the eval split's token ids, truncation included (when
    the user's rows are not at hand)."""
    ids = tokenized[row]["input_ids"]
    segments = tokenized[row].get("token_type_ids")
    if segments and any(segments):
        first = [t for t, s in zip(ids, segments, strict=True) if s == 0]
        second = [t for t, s in zip(ids, segments, strict=True) if s == 1]
        return {
            "text": tokenizer.decode(first, skip_special_tokens=True),
            "text_pair": tokenizer.decode(second, skip_special_tokens=True),
        }
    return {"text": tokenizer.decode(ids, skip_special_tokens=True)}


# Gold answer length (words) -> the bucket it is reported in.
ANSWER_LENGTHS = ((1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (10, "6-10"), (10**9, ">10"))


def qa_view(inputs: ViewInputs) -> View:
    from nlp_transfer.tasks.metrics import exact_match, token_f1

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
    figures.bars(
        labels, f1, inputs.folder / "answer_length.png", title="eval F1 by gold answer length (words)", ylabel="F1 (%)"
    )
    return View(
        figures=[Figure("answer_length.png", "Eval F1 by the length of the gold answer (questions per bucket)")],
        numbers={
            "f1_by_answer_length": dict(zip(labels, f1, strict=True)),
            "exact_match_by_answer_length": dict(zip(labels, em, strict=True)),
        },
    )


def multi_label_view(inputs: ViewInputs) -> View:
    """Eval F1 of each label at the run's decision thresholds, weakest first, with each label's support."""
    names = inputs.label_names
    found = {n: inputs.evaluation.get(f"eval_f1_{n}") for n in names}
    scores = {n: float(v) for n, v in found.items() if isinstance(v, int | float)}
    if not scores:
        return View()
    order = sorted(scores, key=lambda n: (scores[n], n))
    support = {n: inputs.evaluation.get(f"eval_support_{n}") for n in order}
    labels = [f"{n} ({support[n]:.0f})" if isinstance(support[n], int | float) else n for n in order]
    figures.bars(
        labels, [scores[n] for n in order], inputs.folder / "label_f1.png", title="eval F1 per label", ylabel="F1"
    )
    return View(
        figures=[
            Figure("label_f1.png", "Eval F1 of each label at its decision threshold (eval positives), weakest first")
        ],
        numbers={"weakest_labels": {n: scores[n] for n in order[:5]}},
    )


def regression_view(inputs: ViewInputs) -> View:
    """Predicted against true eval values of each target, in the targets' own units."""
    predicted = np.asarray(inputs.captured.predictions, dtype=np.float64)  # (N, T), standardised as trained
    true = np.asarray(inputs.captured.label_ids, dtype=np.float64)
    predicted, true = predicted.reshape(len(predicted), -1), true.reshape(len(true), -1)
    mean = np.asarray(inputs.model_settings.get("target_mean", [0.0] * true.shape[1]), dtype=np.float64)
    std = np.asarray(inputs.model_settings.get("target_std", [1.0] * true.shape[1]), dtype=np.float64)
    drawn, numbers = [], {}
    for index, name in enumerate(inputs.label_names[: true.shape[1]]):
        file = f"scatter_{_safe(name)}.png"
        values = (true[:, index] * std[index] + mean[index], predicted[:, index] * std[index] + mean[index])
        figures.scatter(*values, inputs.folder / file, title=f"{name}: predicted vs true (eval)")
        drawn.append(Figure(file, f"{name}: predicted against true eval values; the dashed line is a perfect model"))
        numbers[f"mae_{name}"] = float(np.abs(values[0] - values[1]).mean())
    return View(figures=drawn, numbers=numbers)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


# task name -> its view of the eval predictions (tasks without one get the curves alone)
VIEWS: dict[str, Callable[[ViewInputs], View]] = {
    "classification": classification_view,
    "multi_label": multi_label_view,
    "regression": regression_view,
    "qa": qa_view,
    "token_classification": token_view,
}


def classification_example(rows: Any, task: Any) -> dict[str, str] | None:
    """A short text of the eval split (and its pair), for the model card's usage example."""
    columns = [c for c in (task.text, task.text_pair) if c]
    for row in rows.select_columns(columns).select(range(min(len(rows), 200))):
        texts = [row[c] for c in columns]
        if all(isinstance(t, str) and 10 <= len(t.strip()) <= 160 for t in texts):
            return dict(zip(["text", "text_pair"], [t.strip() for t in texts], strict=False))
    return None


def qa_example(rows: Any, task: Any) -> dict[str, str] | None:
    """The eval question with the shortest passage, for the model card's usage example."""
    sample = rows.select(range(min(len(rows), 200)))
    contexts = [c if isinstance(c, str) else "" for c in sample[task.context]]
    usable = [i for i, c in enumerate(contexts) if c.strip()]
    if not usable:
        return None
    best = min(usable, key=lambda i: len(contexts[i]))
    return {"question": str(sample[task.question][best]).strip(), "context": contexts[best].strip()}


# task name -> an input from the run's own eval data for the card's usage example (else a generic one)
EXAMPLES: dict[str, Callable[[Any, Any], dict[str, str] | None]] = {
    "classification": classification_example,
    "qa": qa_example,
    "token_classification": token_example,
}
