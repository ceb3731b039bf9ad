"""Offline metrics as pure functions of numpy arrays (no evaluate.load: it fetches metric scripts from the Hub)."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict[str, float]:
    """Accuracy, macro-F1, and precision / recall / F1 / support per class (a class with no predictions has P=0).

    Macro-F1 averages F1 over every class in `label_names`, including classes absent from this eval set (F1=0 for
    them only when they were predicted; a class neither present nor predicted is left out, as scikit-learn does
    with labels=None).
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    result: dict[str, float] = {"accuracy": float((labels == predictions).mean()) if len(labels) else 0.0}
    f1_scores = []
    for class_id, name in enumerate(label_names):
        true_positive = float(np.sum((predictions == class_id) & (labels == class_id)))
        predicted = float(np.sum(predictions == class_id))
        support = float(np.sum(labels == class_id))
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[f"precision_{name}"] = precision
        result[f"recall_{name}"] = recall
        result[f"f1_{name}"] = f1
        result[f"support_{name}"] = support
        if support or predicted:
            f1_scores.append(f1)
    result["macro_f1"] = float(np.mean(f1_scores)) if f1_scores else 0.0
    return result


# ---- extractive QA: the official SQuAD evaluation, as pure functions -------------------------------------------
# normalize_answer, f1 and exact match follow evaluate-v1.1.py (and v2.0, which adds the empty-answer rules):
# lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace; the best score over gold answers.

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: list[str], golds: list[list[str]]) -> dict[str, float]:
    """Exact match and F1 in percent, each the best over a question's gold answers, averaged over questions.

    A question without gold answers (SQuAD v2 unanswerable) is answered correctly only by the empty answer; when
    some questions have answers and some do not, the scores on each kind are reported too (has_answer_*, no_answer_*).
    """
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions")
    scores = [_scores(p, gold) for p, gold in zip(predictions, golds, strict=True)]
    result = _averaged(scores, "")
    answerable = [s for s in scores if s[2]]
    if 0 < len(answerable) < len(scores):
        result |= _averaged(answerable, "has_answer_") | _averaged([s for s in scores if not s[2]], "no_answer_")
    return result


def _scores(prediction: str, gold: list[str]) -> tuple[float, float, bool]:
    """(exact match, F1, answerable) for one question: v1.1's rules, and v2.0's for a question with no answer."""
    if not gold:
        right = float(normalize_answer(prediction) == "")
        return right, right, False
    return max(exact_match(prediction, g) for g in gold), max(token_f1(prediction, g) for g in gold), True


def _averaged(scores: list[tuple[float, float, bool]], prefix: str) -> dict[str, float]:
    count = len(scores)
    return {
        f"{prefix}exact_match": 100.0 * sum(s[0] for s in scores) / count if count else 0.0,
        f"{prefix}f1": 100.0 * sum(s[1] for s in scores) / count if count else 0.0,
        f"{prefix}total": float(count),
    }
