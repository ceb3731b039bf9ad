"""`nlp-transfer` with a fault on one process only: the training loss of rank NAN_RANK is NaN at its NAN_STEPS-th
loss computations (comma-separated). Launched by accelerate in tests/unit/test_distributed_decisions.py."""

from __future__ import annotations

import os
from typing import Any

from transformers import Trainer

from nlp_transfer.cli import app

_real = Trainer.compute_loss
_calls = {"n": 0}
_steps = {int(step) for step in os.environ["NAN_STEPS"].split(",")}


def _maybe_nan(self: Any, *args: Any, **kwargs: Any) -> Any:
    loss = _real(self, *args, **kwargs)
    if os.environ.get("RANK") != os.environ["NAN_RANK"] or not self.model.training:
        return loss
    _calls["n"] += 1
    return loss * float("nan") if _calls["n"] in _steps else loss


Trainer.compute_loss = _maybe_nan  # type: ignore[method-assign]
app()
