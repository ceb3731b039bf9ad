"""How much arithmetic a training run does, and how fast this machine can do arithmetic at all.

The model's work is counted the same for every way of training (padded or not, bf16 or fp32): only the real,
unpadded tokens count, so padding shows up as lower achieved FLOP/s, never as more work.

    per token    6 x N               N: the model's parameters outside its embedding tables (a forward and a backward
                                     multiply-add per weight: 2 + 4 FLOPs; Kaplan et al. 2020, PaLM's MFU)
    per text     12 x L x d x T^2    attention scores and the weighted sum (QK^T and AV: 2 x 2 x T^2 x d a layer
                                     forward, times 3 with the backward), for a text of T tokens

The peak is measured, not looked up: a large square torch.matmul in bf16 and in fp32, best of a few, on the same
threads the benchmark trains with. Scripts import it as `from train_flops import ...` (python puts scripts/ first on
sys.path when a script in it runs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification


@dataclass(frozen=True)
class ModelShape:
    non_embedding_parameters: int
    layers: int
    hidden: int

    def flops(self, lengths: Sequence[int]) -> float:
        """Training FLOPs for one pass over texts of these real lengths (tokens, no padding)."""
        tokens = sum(lengths)
        attention = 12 * self.layers * self.hidden * sum(length * length for length in lengths)
        return 6.0 * self.non_embedding_parameters * tokens + attention


def model_shape(model_dir: Path | str, num_labels: int = 2) -> ModelShape:
    """The sequence-classification model's size, built on the meta device (no weights read, no memory)."""
    config = AutoConfig.from_pretrained(model_dir, num_labels=num_labels)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    total = embedding = 0
    for name, parameter in model.named_parameters():
        total += parameter.numel()
        if "embeddings." in name:  # word, position and token-type tables: looked up, not multiplied
            embedding += parameter.numel()
    return ModelShape(total - embedding, int(config.num_hidden_layers), int(config.hidden_size))


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` (size x size) @ (size x size) products in `dtype`, after one warm-up."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    torch.matmul(a, b)  # warm-up: kernel selection, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def matmul_peaks(size: int = 4096, repeats: int = 5) -> dict[str, float]:
    """This machine's measured bf16 and fp32 matmul FLOP/s (with the current torch thread count)."""
    return {"bf16": matmul_peak(torch.bfloat16, size, repeats), "fp32": matmul_peak(torch.float32, size, repeats)}
