"""Sharded training: FSDP or DeepSpeed ZeRO-3 under `accelerate launch` (configs/accelerate/) split the model's weights
across the processes, so the main process cannot save them alone. Every process takes part in gathering them
(gathered_model), and the main process saves a whole copy: the run folder is the same plain model folder as ever.

Only single-phase methods whose model is a plain transformers model (full, unfreeze_last, scratch) are gathered
this way; LoRA and pooled probes train a few weights of a model that fits one GPU, where DDP or ZeRO-2 is the right
tool, and are refused under sharding before anything is written. So are methods that train in several phases
(probe_then_finetune): each phase's result is saved for a resumed run to start from and loaded back into the model,
and neither a save by the main process alone nor a load into sharded weights would be whole; their model fits one
GPU too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from nlp_transfer.core.errors import UserError

log = logging.getLogger(__name__)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def sharding_requested() -> str | None:
    """FSDP or DeepSpeed ZeRO-3 when the launch asks for it (accelerate passes its config as environment)."""
    if _flag("ACCELERATE_USE_FSDP"):
        return "FSDP"
    if _flag("ACCELERATE_USE_DEEPSPEED") and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        return "DeepSpeed ZeRO-3"
    return None


def check_sharding(model: nn.Module, method: str, phased: bool = False) -> None:
    """Refuse, before anything is written, what a sharded launch cannot save whole. `phased`: the method trains in
    several phases, each saved between them (Method.phased)."""
    kind = sharding_requested()
    if kind is None:
        return
    if kind == "FSDP" and not torch.cuda.is_available():
        log.warning("FSDP runs on GPUs only (accelerate enables it for GPU launches): training as DDP on the CPU")
        return
    if not isinstance(model, PreTrainedModel):
        raise UserError(
            f"method {method} under {kind}: sharding is for models too large for one GPU, and a {method} model is "
            "not a plain transformers model to gather; launch with configs/accelerate/ddp.yaml or "
            "deepspeed_zero2.yaml instead"
        )
    if phased:
        raise UserError(
            f"method {method} under {kind}: its phases are saved between them and reloaded on resume, which sharded "
            "weights do not support; launch with configs/accelerate/ddp.yaml or deepspeed_zero2.yaml (its model "
            "fits one GPU), or use method full"
        )


def gathered_model(trainer: Any, model: nn.Module, is_main: bool) -> nn.Module:
    """The model to save. Sharded: every process must call this (the gathering is collective); the main process
    gets a whole copy with the trained weights, the others the model as it is."""
    zero3 = trainer.is_deepspeed_enabled and sharding_requested() == "DeepSpeed ZeRO-3"
    if not (trainer.is_fsdp_enabled or zero3) or not isinstance(model, PreTrainedModel):
        return model
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)  # whole tensors, on the main process
    if not is_main:
        return model
    whole = type(model)._from_config(model.config)
    whole.load_state_dict(state)
    return whole
