"""Decisions of the training engine, tested directly: which checkpoint the diagnostics say was kept (one
definition of "lower is better"), ..."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from nlp_transfer.run.phases import _diagnostics


def _setup(metric: str, task: str = "regression") -> Any:
    train = SimpleNamespace(metric_for_best=metric, early_stopping_patience=None)
    recipe = SimpleNamespace(train=train, task=SimpleNamespace(name=task))
    return SimpleNamespace(loaded=SimpleNamespace(recipe=recipe), prepared=None)


def _trainer(best: str | None) -> Any:
    return SimpleNamespace(state=SimpleNamespace(best_model_checkpoint=best, max_steps=30))


@pytest.mark.parametrize(("metric", "kept_step"), [("mse", 20), ("mae", 20), ("loss", 20), ("pearson", 10)])
def test_the_kept_checkpoint_of_the_fallback_path_follows_the_metric_direction(metric: str, kept_step: int) -> None:
    """Without the Trainer's best checkpoint, the diagnostics pick the best evaluation themselves: the lowest for
    loss, mse and mae, the highest otherwise (the fallback once read every metric but the loss as higher-better)."""
    values = {10: 0.9, 20: 0.4, 30: 0.6}
    history = [{"step": s, "epoch": s / 10, "eval_loss": v, f"eval_{metric}": v} for s, v in values.items()]
    found = _diagnostics(_setup(metric), _trainer(None), history, {f"eval_{metric}": 0.6})
    assert found["kept"]["step"] == kept_step, found["kept"]
