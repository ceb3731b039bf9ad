"""Probe, then fine-tune (LP-FT): fit the head on the frozen encoder first, then train everything (or the top N
layers) at the recipe's learning rate. Starting the second phase from a trained head instead of a random one keeps
the first updates from wrecking the pre-trained features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from nlp_transfer.core.errors import UserError
from nlp_transfer.methods.architectures import architecture_of, blocks
from nlp_transfer.methods.base import (
    Phase,
    PhaseContext,
    PhaseInputs,
    save_model_folder,
)
from nlp_transfer.methods.probe import features_phase, freeze_encoder
from nlp_transfer.methods.unfreeze import unfreeze_top_layers
from nlp_transfer.recipe import ProbeThenFinetuneMethod


class ProbeThenFinetune:
    phased = True  # several phases, each saved for a resumed run (sharded launches refuse it: train.sharding)
    # Not QA: its probe phase trains a head on one pooled vector per example, or on every token's vector (token
    # classification); a span head over a QA window is left to the other methods.
    serves: ClassVar[frozenset[str] | None] = frozenset(
        {"classification", "multi_label", "regression", "token_classification"}
    )

    def __init__(self, config: ProbeThenFinetuneMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        arch = architecture_of(model, "probe_then_finetune")
        # Pooled tasks probe on cached features; others (a head per token) train the head on the frozen encoder.
        self.cached = bool(getattr(task, "pooled_features", False))
        layers = len(blocks(model, arch))
        if self.config.unfreeze_last is not None and self.config.unfreeze_last > layers:
            raise UserError(
                f"method.unfreeze_last: {self.config.unfreeze_last}, but the model has {layers} layers; "
                f"choose 1 to {layers} (or leave it out to train every layer)"
            )
        freeze_encoder(model, arch, "probe_then_finetune")
        return model

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        if self.cached:
            probe = features_phase(
                model,
                context,
                pooling="native",  # the head must read what the model's own forward gives it in phase 2
                layer=-1,
                learning_rate=self.config.probe_learning_rate,
                epochs=self.config.probe_epochs,
                name="probe",
            )
        else:
            spec = context.train.model_copy(
                update={"learning_rate": self.config.probe_learning_rate, "epochs": self.config.probe_epochs}
            )
            probe = Phase("probe", lambda: PhaseInputs(model=model, splits=context.prepared.splits, train=spec))

        def finetune() -> PhaseInputs:
            if self.config.unfreeze_last is None:
                model.requires_grad_(True)
            else:
                unfreeze_top_layers(model, self.config.unfreeze_last, "method.unfreeze_last")
            return PhaseInputs(model=model, splits=context.prepared.splits, train=context.train)

        return [probe, Phase("finetune", finetune)]

    def save(self, model: nn.Module, run_dir: Path, **context: Any) -> None:
        save_model_folder(model, run_dir, **context)
