"""What the methods need to know about each architecture, as one table: where the transformer blocks are, what sits
between them and the head, LoRA's default targets, the pooling the model's own head uses, and how to apply that head
to one pooled vector (for probes trained on cached features).

Adding an architecture is one ARCHITECTURES entry; the methods never branch on model names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nlp_transfer.core.errors import UserError

# The head's modules by their own (last) name, e.g. {"pooler": ..., "dropout": ..., "classifier": ...} for BERT.
HeadModules = Mapping[str, nn.Module] | nn.ModuleDict
HeadOnPooled = Callable[[HeadModules, torch.Tensor], torch.Tensor]  # (head modules, pooled (B, H)) -> logits (B, K)


@dataclass(frozen=True)
class Architecture:
    layers: str  # the list of transformer blocks, a dotted path under model.base_model
    after_layers: tuple[str, ...]  # base-model modules between the last block and the head (train with the top blocks)
    head_in_base: tuple[str, ...]  # base-model modules that belong to the task head (BERT's pooler feeds only it)
    lora_targets: tuple[str, ...]  # attention projections LoRA adapts by default
    native_pooling: str  # the token the model's own classification head reads: "cls" (first) or "last"
    classify_pooled: HeadOnPooled  # the model's own classification head applied to a pooled vector
    # RoBERTa numbers positions from pad_token_id + 1 (create_position_ids_from_input_ids), so that many position
    # embeddings are never used: 514 of them hold 512 tokens.
    positions_after_padding: bool = False
    # Each block's feed-forward output projection, under a block: the int8 export keeps it in float (its input, the
    # activation's output, has the outliers that per-tensor int8 handles worst; share/quantize.py).
    ffn_output: str = "output.dense"


def _bert_head(head: Any, pooled: torch.Tensor) -> torch.Tensor:
    pooler = head["pooler"]  # dense + tanh on the first token
    return head["classifier"](head["dropout"](pooler.activation(pooler.dense(pooled))))


def _distilbert_head(head: Any, pooled: torch.Tensor) -> torch.Tensor:
    return head["classifier"](head["dropout"](nn.functional.relu(head["pre_classifier"](pooled))))


def _roberta_head(head: Any, pooled: torch.Tensor) -> torch.Tensor:
    return head["classifier"](pooled.unsqueeze(1))  # RobertaClassificationHead reads features[:, 0]


def _gpt2_head(head: Any, pooled: torch.Tensor) -> torch.Tensor:
    return head["score"](pooled)


ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture("encoder.layer", (), ("pooler",), ("query", "value"), "cls", _bert_head),
    "roberta": Architecture(
        "encoder.layer", (), (), ("query", "value"), "cls", _roberta_head, positions_after_padding=True
    ),
    "distilbert": Architecture(
        "transformer.layer", (), (), ("q_lin", "v_lin"), "cls", _distilbert_head, ffn_output="ffn.lin2"
    ),
    "gpt2": Architecture("h", ("ln_f",), (), ("c_attn",), "last", _gpt2_head, ffn_output="mlp.c_proj"),
}


def architecture_of(model: nn.Module, method: str) -> Architecture:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURES:
        raise UserError(
            f"method {method}: architecture '{model_type}' is not supported by this method yet; supported: "
            f"{', '.join(ARCHITECTURES)} (method full works with any architecture)"
        )
    return ARCHITECTURES[model_type]


def position_limit(config: Any) -> int | None:
    """The longest input (in tokens) the model's position embeddings allow; None when the config does not say."""
    positions = getattr(config, "max_position_embeddings", None)  # GPT-2's n_positions answers to this name too
    if not isinstance(positions, int) or positions <= 0:
        return None
    arch = ARCHITECTURES.get(getattr(config, "model_type", ""))
    if arch is not None and arch.positions_after_padding:
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return positions


def blocks(model: nn.Module, arch: Architecture) -> nn.ModuleList:
    return _get(_base(model), arch.layers)


def head_module_names(model: nn.Module, arch: Architecture, with_parameters_only: bool = False) -> list[str]:
    """The task head as dotted module paths: top-level modules outside the base model, plus head_in_base.

    Parameter-free modules (the head's dropout) are included unless asked otherwise: they must switch between train
    and eval mode with the head.
    """
    if _base(model) is model:
        return []  # a bare encoder (BertModel, GPT2Model): no head at all
    base_name = getattr(model, "base_model_prefix", "")
    names = [name for name, _ in model.named_children() if name != base_name]
    names += [f"{base_name}.{name}" for name in arch.head_in_base if _has_module(_base(model), name)]
    return [n for n in names if not with_parameters_only or _has_parameters(_get(model, n))]


def head_modules(model: nn.Module, arch: Architecture) -> dict[str, nn.Module]:
    """The task head's modules by their own name (the last part of the dotted path): what classify_pooled reads."""
    return {name.rsplit(".", 1)[-1]: get_module(model, name) for name in head_module_names(model, arch)}


def get_module(model: nn.Module, dotted: str) -> nn.Module:
    module: nn.Module = _get(model, dotted)
    return module


def set_trainable(model: nn.Module, module_names: list[str]) -> None:
    """Freeze everything, then unfreeze the named modules (dotted paths from the task model)."""
    model.requires_grad_(False)
    for name in module_names:
        _get(model, name).requires_grad_(True)


def _base(model: nn.Module) -> nn.Module:
    base = getattr(model, "base_model", model)
    return base if isinstance(base, nn.Module) else model


def _get(root: nn.Module, dotted: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _has_module(root: nn.Module, dotted: str) -> bool:
    try:
        return isinstance(_get(root, dotted), nn.Module)
    except AttributeError:
        return False


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())
