"""A trained text-task model (classification, multi_label, regression) as a function of texts: each text truncated
or windowed as in training (tasks.text_inputs), the model run on the chosen device and precision, and a text's
windows pooled, so one output row per text comes back whatever its length. Predict and evaluate of all three tasks
read outputs here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.tasks.text_inputs import TextInputs, encode_texts, pool_windows
from nlp_transfer.use.trained import Trained


class TextModel:
    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.runtime, self.tokenizer, self.model = trained.on_device(runtime)
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.inputs = TextInputs.of(self.task)
        self.config = config_of(self.model)
        # Lengths are padded up to a multiple of this (1: to the longest text). A server sets a larger one: every
        # new (rows, length) shape grows the CPU kernels' caches, so a few shapes keep its memory flat.
        self.pad_multiple = 1

    def outputs(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Iterator[torch.Tensor]:
        """(batch, K) float outputs (logits, or standardised regression values) for each batch of texts."""
        for start in range(0, len(texts), self.batch_size):
            second = list(pairs[start : start + self.batch_size]) if pairs is not None else None
            yield self.batch_outputs(list(texts[start : start + self.batch_size]), second)

    def batch_outputs(self, texts: list[str], pairs: list[str] | None = None) -> torch.Tensor:
        """(len(texts), K) float32 outputs on the CPU: one row per text, its windows pooled."""
        encoded = encode_texts(self.tokenizer, texts, pairs, self.inputs)
        rows = len(encoded.documents)
        found = [
            self._run({name: values[begin : begin + self.batch_size] for name, values in encoded.rows.items()})
            for begin in range(0, rows, self.batch_size)
        ]
        outputs = torch.cat(found).float()  # (rows, K): one row per text, or per window
        if self.inputs.windowed:
            pooled, _ = pool_windows(outputs.numpy(), None, encoded.documents, self.inputs.window_pooling)
            outputs = torch.from_numpy(np.ascontiguousarray(pooled))
        return outputs

    def _run(self, rows: dict[str, list[list[int]]]) -> torch.Tensor:
        length = padded_length(max(map(len, rows["input_ids"])), self.pad_multiple, self.inputs.max_length)
        padded = self.tokenizer.pad(rows, padding="max_length", max_length=length, return_tensors="pt")
        inputs = padded.to(self.runtime.device)
        with torch.inference_mode(), self.runtime.precision.autocast():
            return self.model(**inputs).logits.float().cpu()


def padded_length(longest: int, multiple: int, max_length: int) -> int:
    """`longest` rounded up to a multiple of `multiple`, never past the model's max_length (or the text itself)."""
    rounded = -(-longest // multiple) * multiple
    return min(rounded, max(longest, max_length))


def config_of(model: nn.Module) -> Any:
    """The transformers config, whatever wraps the model (a peft adapter, a probe's pooling)."""
    inner = getattr(model, "model", None)
    return getattr(model, "config", None) or getattr(inner, "config", None)
