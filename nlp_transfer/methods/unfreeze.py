"""Partial fine-tuning: embeddings and lower layers frozen; the top N transformer blocks and the head train."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from nlp_transfer.core.errors import UserError
from nlp_transfer.methods.architectures import architecture_of, blocks, head_module_names, set_trainable
from nlp_transfer.methods.base import Phase, PhaseContext, save_model_folder, train_phase
from nlp_transfer.recipe import UnfreezeLastMethod


def unfreeze_top_layers(model: nn.Module, layers: int, field: str) -> None:
    """Freeze all, then unfreeze the last `layers` blocks, what sits after them (e.g. GPT-2's ln_f) and the head."""
    arch = architecture_of(model, "unfreeze_last")
    stack = blocks(model, arch)
    if layers > len(stack):
        raise UserError(
            f"{field}: {layers}, but the model has {len(stack)} layers; choose 1 to {len(stack)} "
            "(or method full to train every layer)"
        )
    base = getattr(model, "base_model_prefix", "")
    top = [f"{base}.{arch.layers}.{i}" for i in range(len(stack) - layers, len(stack))]
    set_trainable(model, top + [f"{base}.{name}" for name in arch.after_layers] + head_module_names(model, arch))


class UnfreezeLast:
    # Every task: the top layers train on the task's own loss.
    serves: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: UnfreezeLastMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        unfreeze_top_layers(model, self.config.layers, "method.layers")
        return model

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        return [train_phase(model, context, self.config.learning_rate)]

    def save(self, model: nn.Module, run_dir: Path, **context: Any) -> None:
        save_model_folder(model, run_dir, **context)
