"""What a finished classification run says about its model: the best constant answer it must beat, its scores on a
labelled file (nlp-transfer evaluate), its view of the eval predictions (the confusion matrix, a calibration figure
with its expected calibration error, and the eval examples the model gets wrong most confidently: errors.jsonl), its
card lines and a usage example from its eval data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.tasks import classification
from nlp_transfer.tasks.evaluations import Evaluation, check_text_options, column
from nlp_transfer.tasks.metrics import classification_metrics
from nlp_transfer.tasks.results import Canvas, CardFacts, Figure, View, ViewInputs, split_labels
from nlp_transfer.tasks.text_inputs import describe_inputs, long_texts
from nlp_transfer.tasks.text_rows import check_kinds

WORST_ERRORS = 50  # eval examples kept in errors.jsonl: the confidently wrong ones first


def best_constant(eval_labels: Sequence[int], label_names: list[str], split: str = "eval") -> dict[str, Any]:
    """Always giving one answer, the one that scores best on the split being scored (by accuracy, then macro-F1):
    the score a model must beat there. Chosen on that split, not the training split, so a tie or a shift between
    the two never names a class that scores worse than another constant answer would."""
    gold = np.asarray(eval_labels, dtype=int)
    if not len(gold):
        return {}
    scored = [
        classification_metrics(gold, np.full(len(gold), answer), label_names) for answer in range(len(label_names))
    ]
    best = max(range(len(scored)), key=lambda a: (scored[a]["accuracy"], scored[a]["macro_f1"], -a))
    return {
        "name": f"always '{label_names[best]}' (the best constant answer on the {split} split)",
        "accuracy": scored[best]["accuracy"],
        "macro_f1": scored[best]["macro_f1"],
    }


def baseline(prepared: Any) -> dict[str, Any]:
    labels = split_labels(prepared, "eval")
    return best_constant(labels, prepared.label_names) if labels else {}


def view(inputs: ViewInputs, canvas: Canvas) -> View:
    logits = inputs.captured.predictions
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits, dtype=np.float64)  # (N, K)
    gold = np.asarray(inputs.captured.label_ids).astype(int)  # (N,)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    names = inputs.label_names
    canvas.confusion(gold, predicted, names, inputs.folder / "confusion.png")
    _, ece = canvas.calibration(confidence, predicted == gold, inputs.folder / "calibration.png")
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
    return View(
        figures=[
            Figure("confusion.png", "Confusion matrix on the eval split, normalised per true class"),
            Figure("calibration.png", f"Calibration on the eval split (expected calibration error {ece:.3f})"),
        ],
        numbers={"expected_calibration_error": round(ece, 4), "eval_errors": len(wrong)},
        errors=rows,
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


def example(rows: Any, task: Any) -> dict[str, str] | None:
    """A short text of the eval split (and its pair), for the model card's usage example."""
    columns = [c for c in (task.text, task.text_pair) if c]
    for row in rows.select_columns(columns).select(range(min(len(rows), 200))):
        texts = [row[c] for c in columns]
        if all(isinstance(t, str) and 10 <= len(t.strip()) <= 160 for t in texts):
            return dict(zip(["text", "text_pair"], [t.strip() for t in texts], strict=False))
    return None


def card_summary(facts: CardFacts) -> str:
    names = facts.label_names
    return (
        f"Text classification: it puts {describe_inputs(facts.task)} into one of {len(names)} classes: "
        f"{', '.join(names)}." + long_texts(facts.task)
    )


def card_outputs(facts: CardFacts) -> list[str]:
    names, weights = facts.label_names, facts.resolved.get("class_weights")
    lines = ["## Labels", *[f"- {i}: {name}" for i, name in enumerate(names)], ""]
    if weights:
        shown = ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=False))
        lines[-1:-1] = ["", f"Trained with class weights ({shown}), so rare classes count as much as common ones."]
    return lines


check_options = check_text_options


def evaluate(given: Evaluation) -> dict[str, Any]:
    """Accuracy, macro-F1 and the (class-weighted) loss on the file's usable rows, a long text's windows pooled."""
    task, options, rows, where = given.settings, given.options, given.rows, given.where
    text = column(rows, options.text or task["text"], "--text", where, suggest=True)
    pair_name = options.text_pair or task.get("text_pair")
    pair = column(rows, pair_name, "--text-pair", where, suggest=True) if pair_name else None
    label = column(rows, options.label or task["label"], "--label", where, suggest=True)
    check_kinds(rows, where, {"--text": text, **({"--text-pair": pair} if pair else {})}, ("--label", label))
    usable = [
        i
        for i, row in enumerate(rows)
        if str(row[text] or "").strip()
        and (pair is None or str(row[pair] or "").strip())
        and row[label] is not None
        and str(row[label]).strip()
    ]
    if not usable:
        raise UserError(f"{where}: no usable rows (every text is empty or every label missing)")
    skipped = len(rows) - len(usable)
    rows = rows.select(usable) if skipped else rows
    predictor = given.predictor()
    names = predictor.names
    declared = task.get("labels") is not None or task.get("labels_file") is not None
    fix = "fix the file, or name the label column with --label"
    gold = classification.gold_ids(rows[label], names, declared, where, fix=fix)
    texts = [str(t) for t in rows[text]]
    pairs = [str(t) for t in rows[pair]] if pair else None
    logits = torch.cat(list(predictor.logits(texts, pairs))).float()  # (N, K), a long text's windows pooled
    weighted = classification.weighted_cross_entropy(given.resolved.get("class_weights"))
    loss = (weighted or torch.nn.functional.cross_entropy)(logits, torch.as_tensor(gold)).item()
    metrics = classification.scorer(names, given.extra_metrics())(logits.numpy(), gold) | {"loss": loss}
    return {"rows": len(rows), "skipped": skipped, "metrics": metrics}


def decision(row: dict[str, Any]) -> Any:
    return row["label"]
