"""What a finished regression run says about its model: the training mean it must beat, predicted against true
values per target, and its card lines (the targets and how to undo their scale)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import RegressionTask
from nlp_transfer.tasks import regression
from nlp_transfer.tasks.evaluations import Evaluation, check_text_options, column, finite, usable_texts
from nlp_transfer.tasks.metrics import regression_metrics
from nlp_transfer.tasks.results import (
    Canvas,
    CardFacts,
    Figure,
    View,
    ViewInputs,
    card_number,
    no_example,
    split_labels,
)
from nlp_transfer.tasks.text_inputs import describe_inputs, long_texts

example = no_example  # the card shows the pipeline's generic usage example


def baseline(prepared: Any) -> dict[str, Any]:
    """Predicting the training mean of every target for every text, scored on the eval split in the targets' own
    units (the labels train standardised; the scale is in the task's config attributes)."""
    train, gold = split_labels(prepared, "train"), split_labels(prepared, "eval")
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


def view(inputs: ViewInputs, canvas: Canvas) -> View:
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
        canvas.scatter(*values, inputs.folder / file, title=f"{name}: predicted vs true (eval)")
        drawn.append(Figure(file, f"{name}: predicted against true eval values; the dashed line is a perfect model"))
        numbers[f"mae_{name}"] = float(np.abs(values[0] - values[1]).mean())
    return View(figures=drawn, numbers=numbers)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def card_summary(facts: CardFacts) -> str:
    names = facts.label_names
    what = f"a number, {names[0]}" if len(names) == 1 else f"{len(names)} numbers ({', '.join(names)})"
    return f"Regression: for {describe_inputs(facts.task)} it predicts {what}." + long_texts(facts.task)


def card_outputs(facts: CardFacts) -> list[str]:
    mean, std = facts.model_config.get("target_mean") or [], facts.model_config.get("target_std") or []
    return [
        "## Targets",
        "The model's outputs are standardised: each target's value is `output x std + mean` with the training "
        "targets' mean and std below (also `target_mean` / `target_std` in config.json). `nlp-transfer predict` "
        "returns the values on their own scale; a plain transformers pipeline returns the raw outputs.",
        "",
        "| output | target | mean | std |",
        "|---|---|---|---|",
        *[
            f"| {i} | {name} | {card_number(m)} | {card_number(s)} |"
            for i, (name, m, s) in enumerate(zip(facts.label_names, mean, std, strict=False))
        ],
        "",
    ]


check_options = check_text_options


def evaluate(given: Evaluation) -> dict[str, Any]:
    """The run's own metrics in the targets' units, and the loss on the standardised targets as training saw it."""
    task = RegressionTask.model_validate(given.recipe_task)
    rows, options, where = given.rows, given.options, given.where
    if options.label and isinstance(task.label, str):
        task = task.model_copy(update={"label": options.label})
    predictor = given.predictor()
    mean, std = regression.target_scale(predictor.text_model.config, given.origin)
    targets = task.label if isinstance(task.label, list) else [task.label]
    for name in targets:
        column(rows, name, "--label", where)
    rows, texts, pairs, skipped = usable_texts(rows, options, task, where)
    for name in targets:
        bad = next((i for i, v in enumerate(rows[name]) if not finite(v)), None)
        if bad is not None:
            raise UserError(f"{where}: row {bad + 1}, column '{name}' is {rows[name][bad]!r}, not a finite number")
    truth = np.array([rows[name] for name in targets], dtype=np.float64).T  # (N, T)
    outputs = torch.cat(list(predictor.text_model.outputs(texts, pairs))).float().numpy()  # standardised (N, T)
    standardised = (truth - mean) / std
    loss = regression.mean_squared_error(torch.from_numpy(outputs), torch.from_numpy(standardised)).item()
    score = regression.scorer(targets, mean, std, given.extra_metrics())
    return {"rows": len(rows), "skipped": skipped, "metrics": score(outputs, standardised) | {"loss": loss}}


def decision(row: dict[str, Any]) -> Any:
    return None  # numbers: agreement compares the values themselves
