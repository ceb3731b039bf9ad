"""Metrics by name through the `evaluate` library (train.extra_metrics), computed beside a task's own metrics.

A metric is loaded once, before any training, so a name that cannot be loaded fails before the run folder exists.
evaluate fetches a metric's script from the Hub the first time; offline only a metric cached by an earlier online
load, or a local metric script (a .py file or a folder holding one), can be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import hub_offline
from nlp_transfer.recipe import ExtraMetric


@dataclass
class LoadedMetric:
    label: str  # what the recipe calls it (metric_for_best may name it)
    module: Any  # an evaluate.EvaluationModule
    args: dict[str, Any] = field(default_factory=dict)


def load_extra_metrics(specs: list[str | ExtraMetric], base_dir: Path | None = None) -> list[LoadedMetric]:
    loaded = []
    for number, given in enumerate(specs):
        spec = given if isinstance(given, ExtraMetric) else ExtraMetric(path=given)
        loaded.append(LoadedMetric(spec.label, _load(spec, f"train.extra_metrics.{number}", base_dir), spec.args))
    return loaded


def _load(spec: ExtraMetric, field: str, base_dir: Path | None) -> Any:
    import evaluate

    path = spec.path
    local = [Path(path).expanduser()] + ([base_dir / path] if base_dir is not None else [])
    found = next((p for p in local if p.exists()), None)
    try:
        return evaluate.load(str(found) if found is not None else path, spec.config)
    except (OSError, ValueError, ImportError) as err:  # evaluate: FileNotFoundError, ConnectionError, a bad
        # config name, a metric script's missing dependency; anything else is a bug and reported as one
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if found is None and hub_offline():
            raise UserError(
                f"{field}: metric '{path}' is not cached locally and HF_HUB_OFFLINE=1 forbids fetching it; cache it "
                f"once online (python -c \"import evaluate; evaluate.load('{path}')\") or give the path of a local "
                "metric script"
            ) from err
        raise UserError(
            f"{field}: the evaluate metric '{path}' could not be loaded ({reason}); check the name"
        ) from err


def extra_scores(
    metrics: list[LoadedMetric], predictions: Any, references: Any, taken: set[str], suffix: str = ""
) -> dict[str, float]:
    """Each metric's numbers on these predictions; a key that a built-in metric already uses (`taken`) gets the
    metric's name in front. Non-numeric results (lists, strings) are left out."""
    result: dict[str, float] = {}
    for metric in metrics:
        values = metric.module.compute(predictions=predictions, references=references, **metric.args) or {}
        for key, value in values.items():
            if isinstance(value, int | float | np.number) and not isinstance(value, bool):
                name = key if key not in taken else f"{metric.label}_{key}"
                result[f"{name}{suffix}"] = float(value)
    return result
