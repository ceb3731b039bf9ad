"""Task metrics as pure functions of numpy arrays: classification, multi-label and regression from scikit-learn and
scipy; SQuAD's exact match and F1 written out here, because the official script is not a library and
evaluate.load("squad") fetches it from the Hub (offline it fails)."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, label_names: list[str]) -> dict[str, float]:
    """Accuracy, macro-F1, and precision / recall / F1 / support per class (scikit-learn; a class with no
    predictions has P=0). Macro-F1 averages over the classes present in the labels or the predictions, as
    scikit-learn does by default: a class neither present nor predicted in this eval set is left out."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0}
    ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=ids, zero_division=0.0)
    result: dict[str, float] = {"accuracy": float(accuracy_score(labels, predictions))}
    for class_id, name in enumerate(label_names):
        result[f"precision_{name}"] = float(precision[class_id])
        result[f"recall_{name}"] = float(recall[class_id])
        result[f"f1_{name}"] = float(f1[class_id])
        result[f"support_{name}"] = float(support[class_id])
    result["macro_f1"] = float(f1_score(labels, predictions, average="macro", zero_division=0.0))
    return result


def multi_label_metrics(
    gold: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray, label_names: list[str]
) -> dict[str, float]:
    """gold and predicted (N, L) 0/1, probabilities (N, L). Micro- and macro-F1 (macro over every label, a label
    never predicted nor present counting 0, as the GoEmotions paper reports it), subset accuracy (every label of a
    text right), per-label precision / recall / F1 / support, and macro ROC-AUC over the labels that have both
    positive and negative texts here (it needs no threshold)."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

    gold, predicted = np.asarray(gold).astype(int), np.asarray(predicted).astype(int)
    if len(gold) == 0:
        return {"macro_f1": 0.0, "micro_f1": 0.0}
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, zero_division=0.0)
    result: dict[str, float] = {
        "macro_f1": float(f1_score(gold, predicted, average="macro", zero_division=0.0)),
        "micro_f1": float(f1_score(gold, predicted, average="micro", zero_division=0.0)),
        "subset_accuracy": float((gold == predicted).all(axis=1).mean()),
    }
    both = [i for i in range(gold.shape[1]) if 0 < gold[:, i].sum() < len(gold)]
    if both:
        result["macro_roc_auc"] = float(roc_auc_score(gold[:, both], probabilities[:, both], average="macro"))
    for index, name in enumerate(label_names):
        result[f"precision_{name}"] = float(precision[index])
        result[f"recall_{name}"] = float(recall[index])
        result[f"f1_{name}"] = float(f1[index])
        result[f"support_{name}"] = float(support[index])
    return result


def regression_metrics(targets: np.ndarray, predictions: np.ndarray, names: list[str]) -> dict[str, float]:
    """targets and predictions (N, T) in the targets' own units. Per target: MSE, MAE, Pearson and Spearman
    correlation, R2 (`pearson_V`, ...); the plain names are the means over targets."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    targets, predictions = np.asarray(targets, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    per_target: dict[str, list[float]] = {"mse": [], "mae": [], "pearson": [], "spearman": [], "r2": []}
    result: dict[str, float] = {}
    for index, name in enumerate(names):
        truth, guess = targets[:, index], predictions[:, index]
        constant = len(truth) < 2 or np.ptp(truth) == 0 or np.ptp(guess) == 0  # correlation undefined: 0
        values = {
            "mse": float(mean_squared_error(truth, guess)),
            "mae": float(mean_absolute_error(truth, guess)),
            "pearson": 0.0 if constant else float(pearsonr(truth, guess)[0]),
            "spearman": 0.0 if constant else float(spearmanr(truth, guess)[0]),
            "r2": float(r2_score(truth, guess)) if len(truth) > 1 else 0.0,
        }
        for metric, value in values.items():
            per_target[metric].append(value)
            if len(names) > 1:
                result[f"{metric}_{name}"] = value
    return {metric: float(np.mean(values)) for metric, values in per_target.items()} | result


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
