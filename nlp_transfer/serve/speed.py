"""A loaded predictor made ready for serving: the same predictions, less work per batch and a steady memory.

Measured on the quickstart model (all-MiniLM-L6-v2, bf16 autocast on a 2-core CPU; docs/serving.md):

- Weights kept in the autocast dtype. Under autocast every forward casts each Linear's fp32 weight to bf16 again,
  so a batch of one sentence cost about 19 ms, of which about 8 ms were those casts. A server runs many small
  batches, so the Linear layers are cast once at load. Autocast casts their inputs as before and leaves
  weights already in its dtype alone, so the outputs are bit-for-bit those of the fp32-weight model under autocast.
- Lengths padded to a multiple of PAD_MULTIPLE tokens. The CPU kernels (oneDNN) keep what they build for each new
  (rows x length) shape, and freed buffers of ever-new sizes fragment the heap: 400 batches of random requests grew
  a process from 601 to 1,390 MB and still rising; padded to multiples of 16 it settled at about 890 MB. The
  padding costs little: a batch's fixed cost (reading every weight once) is worth several hundred tokens. (A
  running server still grows for a while: docs/serving.md says what was ruled out.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nlp_transfer.core.hardware import Runtime

PAD_MULTIPLE = 16  # tokens: at most 8 lengths for a 128-token model


def prepare_for_serving(predictor: Any, runtime: Runtime) -> None:
    """Cast the predictor's Linear weights to its autocast dtype (if any) and pad its batches to a few lengths."""
    model = getattr(predictor, "model", None)
    dtype = runtime.precision.dtype
    if isinstance(model, nn.Module) and dtype is not None:
        cast_linear_weights(model, dtype)
    text_model = getattr(predictor, "text_model", None)  # the three text tasks' TextModel pads their batches
    if text_model is not None:
        text_model.pad_multiple = PAD_MULTIPLE


def cast_linear_weights(model: nn.Module, dtype: torch.dtype) -> int:
    """Every plain nn.Linear's weight and bias in `dtype` (for a model that only runs under autocast to it); how
    many were cast. Embeddings and norms stay in fp32, as autocast keeps them."""
    linears = [module for module in model.modules() if type(module) is nn.Linear]
    for module in linears:
        module.to(dtype)
    return len(linears)
