"""Full fine-tuning: every pre-trained weight and the new head train."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from nlp_transfer.methods.base import Phase, PhaseContext, save_model_folder, train_phase
from nlp_transfer.recipe import FullMethod


class FullFineTuning:
    # Every task: every weight trains on the task's own loss.
    serves: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: FullMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        return model.requires_grad_(True)

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        return [train_phase(model, context, self.config.learning_rate)]

    def save(self, model: nn.Module, run_dir: Path, **context: Any) -> None:
        save_model_folder(model, run_dir, **context)
