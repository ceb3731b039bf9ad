"""`nlp-transfer evaluate` for multi-label and regression models (entries of evaluate.EVALUATORS): the file's labels
read by the rules training used, the texts truncated or windowed as in training, and the metrics computed by the
same functions as the run's own evaluation (with the run's thresholds, scale, class weights and extra metrics)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.recipe import MultiLabelTask, RegressionTask
from nlp_transfer.run.folder import TASK_FILE
from nlp_transfer.share.text_predictors import TextPredictor
from nlp_transfer.share.trained import Trained
from nlp_transfer.tasks import multi_label, regression
from nlp_transfer.tasks.extra_metrics import LoadedMetric, load_extra_metrics
from nlp_transfer.tasks.text_rows import has_texts
from nlp_transfer.tasks.thresholds import Decisions


def extra_metrics_of(trained: Trained) -> list[LoadedMetric]:
    """The run's train.extra_metrics (a local metric script must still be where the run found it)."""
    recorded = trained.recipe.get("train", {}).get("extra_metrics") or []
    return load_extra_metrics(recorded, Path.cwd())


def column(rows: Any, wanted: str, option: str, where: str) -> str:
    if wanted not in rows.column_names:
        raise UserError(
            f"{where}: no column '{wanted}'; the columns are {', '.join(rows.column_names)}. Name the right one with "
            f"{option} (or --columns for a file without a header row)"
        )
    return wanted


def _texts(rows: Any, options: Any, task: Any, where: str) -> tuple[Any, list[str], list[str] | None, int]:
    """(rows with a usable text, texts, pair texts, skipped)."""
    text = column(rows, options.text or task.text, "--text", where)
    pair_name = options.text_pair or task.text_pair
    pair = column(rows, pair_name, "--text-pair", where) if pair_name else None
    fields = rows.select_columns([c for c in (text, pair) if c]).to_dict()
    usable = [i for i in range(len(rows)) if has_texts(SimpleNamespace(text=text, text_pair=pair), fields, i)]
    if not usable:
        raise UserError(f"{where}: no usable rows (every text is empty)")
    kept = rows.select(usable) if len(usable) < len(rows) else rows
    return kept, [str(t) for t in kept[text]], [str(t) for t in kept[pair]] if pair else None, len(rows) - len(usable)


def evaluate_multi_label(
    trained: Trained, rows: Any, options: Any, where: str, runtime: Runtime | None = None
) -> dict[str, Any]:
    task = MultiLabelTask.model_validate(trained.recipe["task"])
    if options.label and isinstance(task.label, str):
        task = task.model_copy(update={"label": options.label})
    for name in task.label if isinstance(task.label, list) else [task.label]:
        column(rows, name, "--label", where)
    predictor = TextPredictor(trained, batch_size=options.batch_size, runtime=runtime)
    thresholds = multi_label.thresholds_of(trained.folder, predictor.names, trained.origin)
    rows, texts, pairs, skipped = _texts(rows, options, task, where)
    names = predictor.names
    declared = names if task.labels is not None or task.labels_file is not None else None
    gold = multi_label.LabelReader(task, declared, names).matrix(rows, where)  # (N, L)
    logits = torch.cat(list(predictor.text_model.outputs(texts, pairs))).float()  # (N, L)
    weights = read_json_or_empty(trained.folder / TASK_FILE).get("positive_weights")
    loss = multi_label.binary_cross_entropy(weights)(logits, torch.from_numpy(gold)).item()
    decisions = Decisions(names, task.thresholds, task.threshold)
    decisions.settled = thresholds  # the run's, tuned on its eval split; never re-tuned on this file
    score = multi_label.scorer(names, decisions, task.threshold, extra_metrics_of(trained))
    return {"rows": len(rows), "skipped": skipped, "metrics": score(logits.numpy(), gold) | {"loss": loss}}


def evaluate_regression(
    trained: Trained, rows: Any, options: Any, where: str, runtime: Runtime | None = None
) -> dict[str, Any]:
    task = RegressionTask.model_validate(trained.recipe["task"])
    if options.label and isinstance(task.label, str):
        task = task.model_copy(update={"label": options.label})
    predictor = TextPredictor(trained, batch_size=options.batch_size, runtime=runtime)
    mean, std = regression.target_scale(predictor.text_model.config, trained.origin)
    targets = task.label if isinstance(task.label, list) else [task.label]
    for name in targets:
        column(rows, name, "--label", where)
    rows, texts, pairs, skipped = _texts(rows, options, task, where)
    for name in targets:
        bad = next((i for i, v in enumerate(rows[name]) if not _finite(v)), None)
        if bad is not None:
            raise UserError(f"{where}: row {bad + 1}, column '{name}' is {rows[name][bad]!r}, not a finite number")
    truth = np.array([rows[name] for name in targets], dtype=np.float64).T  # (N, T)
    outputs = torch.cat(list(predictor.text_model.outputs(texts, pairs))).float().numpy()  # standardised (N, T)
    standardised = (truth - mean) / std
    loss = regression.mean_squared_error(torch.from_numpy(outputs), torch.from_numpy(standardised)).item()
    score = regression.scorer(targets, mean, std, extra_metrics_of(trained))
    return {"rows": len(rows), "skipped": skipped, "metrics": score(outputs, standardised) | {"loss": loss}}


def _finite(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False
