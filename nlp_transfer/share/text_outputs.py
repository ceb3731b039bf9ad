"""A trained text-task model (classification, multi_label, regression) as a function of texts: each text truncated
or windowed as in training (tasks.text_inputs), the model run batch by batch, and a text's windows pooled, so one
output row per text comes back whatever its length. Predict and evaluate of all three tasks read outputs here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoTokenizer

from nlp_transfer.share.trained import Trained
from nlp_transfer.tasks.text_inputs import TextInputs, encode_texts, pool_windows


class TextModel:
    def __init__(self, trained: Trained, batch_size: int = 32) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(trained.folder)
        self.model = trained.load()
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.inputs = TextInputs.of(self.task)
        self.config = config_of(self.model)

    def outputs(self, texts: list[str], pairs: list[str] | None = None) -> Iterator[torch.Tensor]:
        """(batch, K) float outputs (logits, or standardised regression values) for each batch of texts."""
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            second = pairs[start : start + self.batch_size] if pairs is not None else None
            encoded = encode_texts(self.tokenizer, batch, second, self.inputs)
            rows = len(encoded.documents)
            found = [
                self._run({name: values[begin : begin + self.batch_size] for name, values in encoded.rows.items()})
                for begin in range(0, rows, self.batch_size)
            ]
            outputs = torch.cat(found).float()  # (rows, K): one row per text, or per window
            if self.inputs.windowed:
                pooled, _ = pool_windows(outputs.numpy(), None, encoded.documents, self.inputs.window_pooling)
                outputs = torch.from_numpy(np.ascontiguousarray(pooled))
            yield outputs

    def _run(self, rows: dict[str, list[list[int]]]) -> torch.Tensor:
        inputs = self.tokenizer.pad(rows, padding=True, return_tensors="pt")
        with torch.inference_mode():
            return self.model(**inputs).logits.float()


def config_of(model: nn.Module) -> Any:
    """The transformers config, whatever wraps the model (a peft adapter, a probe's pooling)."""
    inner = getattr(model, "model", None)
    return getattr(model, "config", None) or getattr(inner, "config", None)
