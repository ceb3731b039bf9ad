"""From scratch: the same architecture and tokenizer with random weights, the baseline that shows what transfer buys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from nlp_transfer.methods.base import Phase, PhaseContext, save_model_folder, train_phase
from nlp_transfer.recipe import ScratchMethod


class FromScratch:
    # Every task: a new model trains on the task's own loss.
    serves: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: ScratchMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        # A fresh model from the same config (labels, pad token, sizes); the caller has seeded the generator.
        fresh: nn.Module = task.auto_model_class.from_config(model.config)
        return fresh.requires_grad_(True)

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        return [train_phase(model, context, self.config.learning_rate)]

    def save(self, model: nn.Module, run_dir: Path, **context: Any) -> None:
        save_model_folder(model, run_dir, **context)
