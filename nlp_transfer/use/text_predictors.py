"""The predictor of the text tasks (classification, multi_label, regression: the `texts` kind of input): each text
(or pair) truncated or windowed as in training (text_outputs.TextModel), one output row per text, and the task's
decoder (Task.decoder) turns a batch of outputs into rows: a label and probabilities, the labels above their tuned
thresholds, or the numbers in the targets' units."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.tasks.predictions import ModelFacts
from nlp_transfer.use.inference import WINDOW_BATCHES, in_length_order, predictions, windows
from nlp_transfer.use.inputs import Item
from nlp_transfer.use.label_prior import read_label_prior
from nlp_transfer.use.text_items import TextItems
from nlp_transfer.use.text_outputs import TextModel
from nlp_transfer.use.trained import Trained


def label_names_of(config: Any) -> list[str]:
    return [str(config.id2label[i]) for i in range(len(config.id2label))]


def model_facts(trained: Trained, config: Any) -> ModelFacts:
    """What the task's decoder may read about the trained model."""
    return ModelFacts(label_names_of(config), config, trained.folder, trained.task_settings, trained.origin)


class TextPredictor:
    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        task = trained.task
        self.text_model = TextModel(trained, batch_size, runtime)  # truncates or windows as training did
        self.items = TextItems(trained.task_settings, task.does)
        self.runtime, self.tokenizer, self.model = (
            self.text_model.runtime,
            self.text_model.tokenizer,
            self.text_model.model,
        )
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.id2label = self.text_model.config.id2label
        self.names = label_names_of(self.text_model.config)
        self.decode = task.decoder(model_facts(trained, self.text_model.config))
        # An adapted classifier's correction for its target domain's label prior (label_prior.json; None: none). An
        # ONNX export has it in its graph already (use/onnx_model.py).
        in_graph = getattr(self.model, "label_prior_in_graph", False)
        corrects = task.corrects_label_prior and not in_graph
        self.label_prior = read_label_prior(trained.folder, self.names) if corrects else None

    def batch_logits(self, batch: list[Item]) -> torch.Tensor:
        """(B, K) float32 outputs on the CPU, corrected for the label prior when the model records one."""
        logits = self.text_model.batch_outputs(*self.items.texts(batch))
        return logits if self.label_prior is None else self.label_prior.adjust(logits)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        return self.decode([self.items.echo(item) for item in batch], self.batch_logits(batch))

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        return predictions(self, items)

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Iterator[torch.Tensor]:
        """(window, K) outputs, window by window in input order (torch.cat gives (N, K)), label prior applied."""
        items = [{"text": t} | ({"text_pair": pairs[i]} if pairs is not None else {}) for i, t in enumerate(texts)]
        for window in windows(items, self.batch_size * WINDOW_BATCHES):
            rows = in_length_order(window, self.items.length, self.batch_size, lambda b: list(self.batch_logits(b)))
            yield torch.stack(rows)
