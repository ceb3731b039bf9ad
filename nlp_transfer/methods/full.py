"""Full fine-tuning: every pre-trained weight and the new head train."""

from __future__ import annotations

from typing import Any

from torch import nn

from nlp_transfer.recipe import FullMethod


class FullFineTuning:
    def __init__(self, config: FullMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
