"""What a finished run's log says about its training, in words: which checkpoint was kept and why, whether early
stopping ended the run, whether the model over-fitted (eval loss rising while the training loss falls), and whether
it beats the task's trivial baseline (each task's `baseline`: the best constant answer for classification, a constant
answer for multi-label, the training mean for regression). The summary, the model card and report.html show these;
metrics.json keeps them under `diagnostics`.
"""

from __future__ import annotations

from typing import Any

from nlp_transfer.recipe import lower_is_better

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


def messages(diagnostics: dict[str, Any]) -> list[str]:
    """The diagnostics as sentences, most important first."""
    found = [diagnostics.get("no_better_than_baseline")]
    found += [diagnostics.get(key, {}).get("message") for key in ("overfitting", "early_stopped", "kept")]
    baseline = diagnostics.get("baseline")
    if baseline and "no_better_than_baseline" not in diagnostics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in baseline.items() if isinstance(v, float))
        found.append(f"baseline: {baseline['name']}: {shown}")
    return [m for m in found if m]
