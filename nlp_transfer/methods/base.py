"""The Method protocol: turn a freshly loaded pre-trained model into the model that trains."""

from __future__ import annotations

from typing import Any, Protocol

from torch import nn


class Method(Protocol):
    def __init__(self, config: Any) -> None: ...

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        """Freeze, wrap or re-initialise as the method says; the task tells which parts are its head."""
        ...


def parameter_counts(model: nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total}
