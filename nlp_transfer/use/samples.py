"""Sample inputs for checking a converted model against the one it came from (export --merge, export --onnx), and
how close the outputs must be. Which inputs and outputs: the task's kind of input (tasks.input_kinds)."""

from __future__ import annotations

from typing import Any

import torch

from nlp_transfer.tasks import TASKS
from nlp_transfer.tasks.input_kinds import InputKind

MAX_LOGIT_DIFFERENCE = 1e-3  # merged vs adapter, ONNX vs PyTorch: float32 rounding is ~1e-6; more is a bug


def input_kind(recipe: dict[str, Any]) -> InputKind:
    return TASKS[recipe["task"]["name"]].inputs


def sample_inputs(tokenizer: Any, recipe: dict[str, Any]) -> Any:
    """The task's sample inputs tokenized as in training, padded into one batch."""
    return input_kind(recipe).samples(tokenizer, recipe["task"]["max_length"])


def sample_outputs(model: Any, tokenizer: Any, recipe: dict[str, Any]) -> list[torch.Tensor]:
    """The model's output tensors (logits, or start and end logits) on the sample inputs."""
    with torch.inference_mode():
        output = model(**sample_inputs(tokenizer, recipe))
    return [getattr(output, name).float() for name in input_kind(recipe).output_names]


def max_difference(expected: list[torch.Tensor], found: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(expected, found, strict=True))
