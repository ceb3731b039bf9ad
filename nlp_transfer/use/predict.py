"""Predict with a trained model (a run folder, a copy of one, or a pushed Hub repo; trained.py finds it): a label for
each text or text pair (classification), the labels of each text (multi_label), its numbers (regression), an answer
span for each question (QA). PREDICTORS picks the predictor from the task the model was trained on.

A predictor is a task's own part only: its input side (`items`, an inputs.InputSide: which inputs it reads, their
default columns, how to check one; text_items.TextItems for the three text tasks, question_items.QuestionItems for
QA) and a batch of inputs -> one output row each (predict_batch). Reading the inputs (inputs.py), batching them
by length and keeping input order, sharing them out across processes and writing the rows (inference.py), and the
device and precision (core.hardware.Runtime) are the same for every task.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.tasks import spans
from nlp_transfer.use.inference import WINDOW_BATCHES, in_length_order, ordered, predict_lines, windows
from nlp_transfer.use.inputs import Inputs, InputSide, Item, PredictInputs, Source, validated_inputs
from nlp_transfer.use.label_prior import read_label_prior
from nlp_transfer.use.prediction_files import joined
from nlp_transfer.use.question_items import QuestionItems
from nlp_transfer.use.text_items import TextItems
from nlp_transfer.use.text_outputs import TextModel, config_of
from nlp_transfer.use.text_predictors import LabelSetPredictor, NumberPredictor
from nlp_transfer.use.token_predictor import TokenPredictor
from nlp_transfer.use.trained import Trained, open_trained


class Predictor(Protocol):
    batch_size: int

    @property
    def items(self) -> InputSide:
        """What the task reads, and how one input is checked and sized."""
        ...

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None: ...

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        """One output row per input, in the batch's order."""
        ...


def open_predictor(
    reference: str | Path, batch_size: int = 32, revision: str | None = None, runtime: Runtime | None = None
) -> Predictor:
    """The predictor for the task the model was trained on (PREDICTORS below), on the best device by default."""
    trained = open_trained(reference, revision)
    return PREDICTORS[trained.recipe["task"]["name"]](trained, batch_size, runtime)


def read_inputs(predictor: Predictor, given: PredictInputs) -> Inputs:
    """Every input (command line, then --file) checked and counted before any prediction is made."""
    arguments = predictor.items.from_arguments(given)
    roles = predictor.items.roles(given) if given.file is not None else {}
    return validated_inputs(arguments, given.file, roles, given.stream, predictor.items.check, given.keep)


def predict_inputs(predictor: Predictor, inputs: Inputs, out: Path | None, show_progress: bool) -> None:
    """Predictions in input order, each after the kept columns of its file row, to `out` (JSON lines, CSV or TSV
    by its extension) or stdout; shared out across processes when launched."""

    def predict_joined(batch: list[tuple[Item, Source]]) -> list[dict[str, Any]]:
        found = predictor.predict_batch([item for item, _ in batch])
        return [joined(source, row, inputs.columns) for (_, source), row in zip(batch, found, strict=True)]

    def rows(part: tuple[int, int], progress: Any) -> Iterator[dict[str, Any]]:
        entries = ((item, source) for _, item, source in inputs.stream())
        return ordered(
            entries,
            lambda entry: predictor.items.length(entry[0]),
            predictor.batch_size,
            predict_joined,
            part,
            progress,
        )

    predict_lines(rows, inputs.count, predictor.batch_size, out, show_progress)


def predictions(predictor: Predictor, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """In-process predictions for a list of inputs (for classification plain strings will do), in order."""
    normalized = [item if isinstance(item, dict) else {"text": str(item)} for item in items]
    return ordered(normalized, predictor.items.length, predictor.batch_size, predictor.predict_batch)


class LabelPredictor:
    """Classification: label and probabilities for each text, or text pair when the model was trained on pairs."""

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.text_model = TextModel(trained, batch_size, runtime)  # truncates or windows as training did
        self.items = TextItems(trained.task_settings, "classifies")
        self.runtime, self.tokenizer, self.model = (
            self.text_model.runtime,
            self.text_model.tokenizer,
            self.text_model.model,
        )
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.id2label = config_of(self.model).id2label
        # An adapted model's correction for its target domain's label prior (label_prior.json; None: none). An
        # ONNX export has it in its graph already (use/onnx_model.py).
        in_graph = getattr(self.model, "label_prior_in_graph", False)
        names = [self.id2label[i] for i in range(len(self.id2label))]
        self.label_prior = None if in_graph else read_label_prior(trained.folder, names)

    def batch_logits(self, batch: list[Item]) -> torch.Tensor:
        """(B, num_labels) float32 logits on the CPU, corrected for the label prior when the model records one."""
        logits = self.text_model.batch_outputs(*self.items.texts(batch))
        return logits if self.label_prior is None else self.label_prior.adjust(logits)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        id2label = self.id2label
        rows = []
        for item, probabilities in zip(batch, self.batch_logits(batch).softmax(dim=-1).tolist(), strict=True):
            best = max(range(len(probabilities)), key=probabilities.__getitem__)
            rows.append(
                self.items.echo(item)
                | {
                    "label": id2label[best],
                    "probability": round(probabilities[best], 6),
                    "probabilities": {id2label[i]: round(p, 6) for i, p in enumerate(probabilities)},
                }
            )
        return rows

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        return predictions(self, items)

    def logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Iterator[torch.Tensor]:
        """(window, num_labels) logits, window by window in input order (torch.cat gives (N, num_labels))."""
        items = [{"text": t} | ({"text_pair": pairs[i]} if pairs is not None else {}) for i, t in enumerate(texts)]
        for window in windows(items, self.batch_size * WINDOW_BATCHES):
            rows = in_length_order(window, self.items.length, self.batch_size, lambda b: list(self.batch_logits(b)))
            yield torch.stack(rows)


class AnswerPredictor:
    """Extractive QA: the answer span of each (question, context) pair, with its score and character offsets.

    Long contexts are windowed exactly as in training and the windows of a pair merged (spans.py)."""

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.runtime, self.tokenizer, self.model = trained.on_device(runtime)
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.items = QuestionItems(self.task, self.tokenizer)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        task = self.task
        found = spans.windows(
            self.tokenizer,
            [p["question"] for p in batch],
            [p["context"] for p in batch],
            max_length=task["max_length"],
            stride=task["stride"],
        )
        merger = spans.AnswerMerger(
            n_best=task["n_best"], allow_null=task["unanswerable"] is True, null_threshold=task["null_threshold"]
        )
        for start in range(0, len(found), self.batch_size):
            chunk = found[start : start + self.batch_size]
            inputs = self.tokenizer.pad([w.encoding for w in chunk], return_tensors="pt").to(self.runtime.device)
            with torch.inference_mode(), self.runtime.precision.autocast():
                output = self.model(**inputs)
            start_logits = spans.as_numpy(output.start_logits)  # (B, T)
            end_logits = spans.as_numpy(output.end_logits)
            for b, window in enumerate(chunk):
                best = spans.best_spans(
                    start_logits[b],
                    end_logits[b],
                    window.offsets,
                    n_best=task["n_best"],
                    max_answer_length=task["max_answer_length"],
                )
                context = batch[window.example]["context"]
                merger.add(window.example, context, best, spans.null_score(start_logits[b], end_logits[b]))
        answers = merger.answers()
        return [
            {
                **{k: v for k, v in pair.items() if k != "context"},
                "answer": answers[index].text,
                "score": round(answers[index].score, 6),
                "start": answers[index].start,
                "end": answers[index].end,
            }
            for index, pair in enumerate(batch)
        ]

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        return predictions(self, items)


PREDICTORS: dict[str, type[Predictor]] = {
    "classification": LabelPredictor,
    "multi_label": LabelSetPredictor,
    "regression": NumberPredictor,
    "qa": AnswerPredictor,
    "token_classification": TokenPredictor,
}
