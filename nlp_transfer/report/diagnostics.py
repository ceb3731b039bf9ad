"""What a finished run's log says about its training, in words: which checkpoint was kept and why, whether early
stopping ended the run, whether the model over-fitted (eval loss rising while the training loss falls), and whether
it beats the trivial baseline (the best constant answer for classification, a constant answer for multi-label, the
training mean for regression). The summary, the model card and report.html show these;
metrics.json keeps them under `diagnostics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nlp_transfer.recipe import lower_is_better
from nlp_transfer.tasks.text_inputs import DOCUMENT

RISING_EVALUATIONS = 2  # eval loss rising this many evaluations in a row (while training loss falls): over-fitting
MEANINGFUL_CHANGE = 0.02  # relative change of a loss that is more than noise (2%)
BASELINE_MARGIN = 0.01  # within this of the baseline's main metric, a model is "no better than" the baseline


def diagnose(
    history: list[dict[str, Any]],
    *,
    metric: str,
    best_checkpoint: str | None,
    planned_steps: int,
    early_stopping_patience: int | None,
    baseline: dict[str, float] | None,
    final: dict[str, Any],
) -> dict[str, Any]:
    """`history`: the Trainer log of the last phase (train and eval entries); `final`: its eval metrics."""
    evaluations = [e for e in history if "eval_loss" in e]
    greater_is_better = not lower_is_better(metric)
    found: dict[str, Any] = {"kept": _kept(evaluations, metric, greater_is_better, best_checkpoint)}
    steps = max((e.get("step", 0) for e in history), default=0)
    if early_stopping_patience is not None and 0 < steps < planned_steps:
        found["early_stopped"] = {
            "at_step": steps,
            "planned_steps": planned_steps,
            "message": f"early stopping ended the run at step {steps} of {planned_steps}: eval {metric} did not "
            f"improve for {early_stopping_patience} evaluations",
        }
    if (overfitting := _overfitting(history, evaluations, metric, greater_is_better)) is not None:
        found["overfitting"] = overfitting
    if baseline:
        found["baseline"] = baseline
        value = final.get(f"eval_{metric}")
        if metric in baseline and isinstance(value, int | float):
            # The recipe's one definition of direction: mse and mae, like the loss, are better lower.
            lower = lower_is_better(metric)
            worse = value >= baseline[metric] if lower else value <= baseline[metric] + BASELINE_MARGIN
            if worse:
                found["no_better_than_baseline"] = (
                    f"eval {metric} {value:.4f} is no better than {baseline['name']}, {baseline[metric]:.4f}: the "
                    "model has not learned the task; train longer or raise the learning rate"
                )
    return found


def _kept(evaluations: list[dict[str, Any]], metric: str, greater: bool, best: str | None) -> dict[str, Any]:
    if not evaluations:
        return {"step": None, "message": "kept the final model (no evaluation during training picked a checkpoint)"}
    key = f"eval_{metric}"
    scored = [e for e in evaluations if key in e]
    if best is not None:
        step = int(best.rstrip("/").rsplit("-", 1)[-1])
        chosen = next((e for e in scored if e.get("step") == step), None)
    else:
        chosen = None
    if chosen is None and scored:
        chosen = (max if greater else min)(scored, key=lambda e: e[key])
    if chosen is None:
        return {"step": None, "message": "kept the final model"}
    last = scored[-1]
    where = f"step {chosen['step']}" + (f" (epoch {chosen['epoch']:g})" if chosen.get("epoch") is not None else "")
    message = f"kept the checkpoint of {where}: the best eval {metric} ({chosen[key]:.4f})"
    if last is not chosen:
        message += f"; the last evaluation, at step {last['step']}, had {last[key]:.4f}"
    return {"step": chosen["step"], "epoch": chosen.get("epoch"), metric: chosen[key], "message": message}


def _overfitting(
    history: list[dict[str, Any]], evaluations: list[dict[str, Any]], metric: str, greater: bool
) -> dict[str, Any] | None:
    """Eval loss rose for RISING_EVALUATIONS evaluations in a row while the training loss logged between them
    fell, or while the eval metric did not improve (a head trained for many epochs on few examples: the model grows
    surer of its mistakes at flat accuracy): the first sign of over-fitting, reported with the numbers."""
    losses = [e["eval_loss"] for e in evaluations]
    key = f"eval_{metric}"
    for end in range(RISING_EVALUATIONS, len(evaluations)):
        start = end - RISING_EVALUATIONS
        rising = all(losses[i + 1] > losses[i] for i in range(start, end))
        if not rising or losses[end] < losses[start] * (1 + MEANINGFUL_CHANGE):
            continue
        first, last = evaluations[start]["step"], evaluations[end]["step"]
        rose = (
            f"over-fitting: eval loss rose from {losses[start]:.4f} to {losses[end]:.4f} between steps {first} "
            f"and {last}"
        )
        train = [e["loss"] for e in history if "loss" in e and first <= e.get("step", 0) <= last]
        if len(train) >= 2 and train[-1] < train[0] * (1 - MEANINGFUL_CHANGE):
            message = f"{rose} while the training loss fell from {train[0]:.4f} to {train[-1]:.4f}"
            return {"from_step": first, "to_step": last, "message": message}
        scores = [float(e[key]) for e in evaluations[start : end + 1] if isinstance(e.get(key), int | float)]
        if metric != "loss" and len(scores) == end - start + 1:
            gain = (scores[-1] - scores[0]) * (1 if greater else -1)
            if gain <= MEANINGFUL_CHANGE * max(abs(scores[0]), 1e-12):
                message = (
                    f"{rose} while eval {metric} stayed at {scores[0]:.4f} to {scores[-1]:.4f}: the model grows surer "
                    "of its mistakes; fewer epochs or more data"
                )
                return {"from_step": first, "to_step": last, "message": message}
    return None


def best_constant(eval_labels: Sequence[int], label_names: list[str], split: str = "eval") -> dict[str, Any]:
    """Always giving one answer, the one that scores best on the split being scored (by accuracy, then macro-F1):
    the score a model must beat there. Chosen on that split, not the training split, so a tie or a shift between
    the two never names a class that scores worse than another constant answer would."""
    from nlp_transfer.tasks.metrics import classification_metrics

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


def per_document(split: Any) -> list[Any]:
    """The labels of a tokenized split, one per text: windowed splits (truncation: windows) hold one row per window,
    and a text counts once however many windows it has."""
    labels = split["labels"]
    if DOCUMENT not in split.column_names:
        return list(labels)
    seen: dict[int, Any] = {}
    for document, label in zip(split[DOCUMENT], labels, strict=True):
        seen.setdefault(int(document), label)
    return list(seen.values())


def _labels(prepared: Any, split: str) -> list[Any] | None:
    found = prepared.splits.get(split)
    if found is None or "labels" not in found.column_names:
        return None
    return per_document(found)


def classification_baseline(prepared: Any) -> dict[str, Any]:
    labels = _labels(prepared, "eval")
    return best_constant(labels, prepared.label_names) if labels else {}


def multi_label_baseline(prepared: Any) -> dict[str, Any]:
    """The better of two constant answers on the eval split: no label for any text, or every label a majority of
    the training texts carry (with GoEmotions-like data, usually none: then "no label")."""
    from nlp_transfer.tasks.metrics import multi_label_metrics

    train, gold = _labels(prepared, "train"), _labels(prepared, "eval")
    if not train or not gold:
        return {}
    frequent = np.asarray(train, dtype=float).mean(axis=0) > 0.5  # (L,) the labels most training texts carry
    gold_array = np.asarray(gold, dtype=int)  # (N, L)
    names = prepared.label_names
    answers = {"no label for any text": np.zeros(len(names), dtype=bool)}
    if frequent.any():
        shown = ", ".join(n for n, f in zip(names, frequent, strict=True) if f)
        answers[f"always the labels most training texts carry ({shown})"] = frequent
    scored = {}
    for name, answer in answers.items():
        predicted = np.tile(answer.astype(int), (len(gold_array), 1))
        scores = multi_label_metrics(gold_array, predicted, predicted.astype(float), names)
        scored[name] = {k: scores[k] for k in ("macro_f1", "micro_f1", "subset_accuracy")}
    best = max(scored, key=lambda n: (scored[n]["micro_f1"], scored[n]["subset_accuracy"]))
    return {"name": f"{best} (a constant answer)", **scored[best]}


def regression_baseline(prepared: Any) -> dict[str, Any]:
    """Predicting the training mean of every target for every text, scored on the eval split in the targets' own
    units (the labels train standardised; the scale is in the task's config attributes)."""
    from nlp_transfer.tasks.metrics import regression_metrics

    train, gold = _labels(prepared, "train"), _labels(prepared, "eval")
    if not train or not gold:
        return {}
    mean = np.asarray(prepared.config_attributes.get("target_mean", 0.0), dtype=np.float64)
    std = np.asarray(prepared.config_attributes.get("target_std", 1.0), dtype=np.float64)
    train_values = np.asarray(train, dtype=np.float64).reshape(len(train), -1) * std + mean  # (N, T)
    gold_values = np.asarray(gold, dtype=np.float64).reshape(len(gold), -1) * std + mean
    constant = np.tile(train_values.mean(axis=0), (len(gold_values), 1))
    scores = regression_metrics(gold_values, constant, prepared.label_names[: gold_values.shape[1]])
    # A constant has no correlation with the truth: pearson and spearman are 0 (regression_metrics' convention).
    return {"name": "always the training mean", **{k: scores[k] for k in ("pearson", "spearman", "r2", "mse", "mae")}}


# task name -> the trivial baseline its models must beat (QA has none worth stating).
BASELINES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "classification": classification_baseline,
    "multi_label": multi_label_baseline,
    "regression": regression_baseline,
}


def messages(diagnostics: dict[str, Any]) -> list[str]:
    """The diagnostics as sentences, most important first."""
    found = [diagnostics.get("no_better_than_baseline")]
    found += [diagnostics.get(key, {}).get("message") for key in ("overfitting", "early_stopped", "kept")]
    baseline = diagnostics.get("baseline")
    if baseline and "no_better_than_baseline" not in diagnostics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in baseline.items() if isinstance(v, float))
        found.append(f"baseline: {baseline['name']}: {shown}")
    return [m for m in found if m]
