"""Probing: the pre-trained encoder is frozen and only the task head trains.

With cache_features (the default) the encoder runs once per example and the head trains on the cached pooled
features (features.py), so extra epochs cost almost nothing. Without it the Trainer runs the frozen encoder every
step: the slow way, kept as the baseline the benchmark compares against and for tasks that do not pool.
The run folder holds a normal model folder; a pooling or layer other than the model's own adds probe.json, which
predict reads to pool the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

from torch import nn
from transformers import default_data_collator

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import training_device
from nlp_transfer.data.cache import content_key
from nlp_transfer.methods.architectures import (
    Architecture,
    architecture_of,
    blocks,
    head_module_names,
    head_modules,
    set_trainable,
)
from nlp_transfer.methods.base import (
    Phase,
    PhaseContext,
    PhaseInputs,
    load_model_folder,
    save_model_folder,
    train_phase,
)
from nlp_transfer.methods.features import (
    HeadOnFeatures,
    PooledClassifier,
    encoder_fingerprint,
    extract_features,
    resolve_pooling,
)
from nlp_transfer.recipe import ProbeMethod

PROBE_FILE = "probe.json"  # pooling and layer, when they differ from what the model's own head reads


def freeze_encoder(model: nn.Module, arch: Architecture, method: str) -> None:
    """Only the task head trains. A task whose model has no separate head has nothing left to train."""
    set_trainable(model, head_module_names(model, arch))
    if not any(p.requires_grad for p in model.parameters()):
        raise UserError(
            f"method {method}: the task's model has no head separate from the encoder, so a frozen encoder leaves "
            "nothing to train; use method full, unfreeze_last or lora"
        )


def check_layer(model: nn.Module, arch: Architecture, layer: int) -> int:
    """-1 and L both mean the last layer; 0 is the embeddings. Returns the layer as encode() reads it."""
    count = len(blocks(model, arch))
    if not -1 <= layer <= count:
        raise UserError(f"method.layer: {layer}, but the model has {count} layers; choose -1 (last), 0 to {count}")
    return -1 if layer == count else layer


def features_phase(
    model: Any,
    context: PhaseContext,
    *,
    pooling: str,
    layer: int,
    learning_rate: float,
    epochs: float,
    name: str,
    normalize: bool = False,
) -> Phase:
    """Encode every split once (cached on disk), then let the Trainer fit the head on the pooled vectors."""
    arch = architecture_of(model, name)
    pooling = resolve_pooling(pooling, arch)

    def build() -> PhaseInputs:
        started = time.perf_counter()
        # Features are extracted where the Trainer will train: never on a GPU the recipe told to leave alone.
        device = training_device(use_cpu=bool(context.train.trainer.get("use_cpu", False)))
        if device.type != "cpu":
            model.to(device)
        fingerprint = encoder_fingerprint(model.base_model)
        splits, hits = {}, {}
        with context.main_first():  # in a multi-process run the others read the main process's cache
            for split_name, split in context.prepared.splits.items():
                splits[split_name], hits[split_name] = extract_features(
                    model.base_model,
                    split,
                    context.tokenizer,
                    pooling=pooling,
                    layer=layer,
                    encoder_fingerprint=fingerprint,
                    data_key=context.prepared.keys.get(split_name) or content_key(split),
                    precision=context.precision,
                    multiple=context.train.length_multiple(context.precision),
                    normalize=normalize,
                )
        spec = context.train.model_copy(update={"learning_rate": learning_rate, "epochs": epochs})
        return PhaseInputs(
            model=HeadOnFeatures(arch, head_modules(model, arch)),
            splits=splits,
            train=spec,
            collator=default_data_collator,
            info={
                "feature_seconds": round(time.perf_counter() - started, 2),
                "feature_cache_hits": sorted(k for k, hit in hits.items() if hit),
            },
        )

    return Phase(name, build)


class Probe:
    # Every task: the task's head trains on frozen features.
    serves: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: ProbeMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        arch = architecture_of(model, "probe")
        freeze_encoder(model, arch, "probe")
        pooling = resolve_pooling(self.config.pooling, arch)
        layer = check_layer(model, arch, self.config.layer)
        if pooling == arch.native_pooling and layer == -1:
            return model  # exactly what the model's own head reads: a plain transformers model
        if not getattr(task, "pooled_features", False):
            raise UserError(
                "method.pooling / method.layer: this task's head reads every token, not one pooled vector; "
                "remove method.pooling and method.layer (the probe trains the head on the last layer's tokens)"
            )
        return PooledClassifier(model, arch, pooling, layer)

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        """The pooling and layer are read from the model prepare() returned (a PooledClassifier says its own; a
        plain model reads its native pooling of the last layer), never from state prepare() left behind."""
        learning_rate = self.config.learning_rate or context.train.learning_rate
        if not (self.config.cache_features and context.pooled_features):
            return [train_phase(model, context, learning_rate, name="probe")]
        if isinstance(model, PooledClassifier):
            task_model, pooling, layer = model.model, model.pooling, model.layer
        else:
            task_model, pooling, layer = model, architecture_of(model, "probe").native_pooling, -1
        return [
            features_phase(
                task_model,
                context,
                pooling=pooling,
                layer=layer,
                learning_rate=learning_rate,
                epochs=context.train.epochs,
                name="probe",
            )
        ]

    @staticmethod
    def save(model: nn.Module, run_dir: Path, **context: Any) -> None:
        if isinstance(model, PooledClassifier):
            save_model_folder(model.model, run_dir, **context)
            pooling = {"pooling": model.pooling, "layer": model.layer}
            if model.normalize:  # a contrastive run's head reads unit-length embeddings
                pooling["normalize"] = True
            (run_dir / PROBE_FILE).write_text(json.dumps(pooling, indent=2) + "\n", encoding="utf-8")
        else:
            save_model_folder(model, run_dir, **context)

    @staticmethod
    def load(run_dir: Path, task: Any) -> nn.Module:
        model = load_model_folder(run_dir, task)
        if not (run_dir / PROBE_FILE).is_file():
            return model
        pooling = json.loads((run_dir / PROBE_FILE).read_text(encoding="utf-8"))
        arch = architecture_of(model, "probe")
        normalize = bool(pooling.get("normalize", False))
        return PooledClassifier(model, arch, pooling["pooling"], int(pooling["layer"]), normalize)
