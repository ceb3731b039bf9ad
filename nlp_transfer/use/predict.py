"""Predict with a trained model (a run folder, a copy of one, or a pushed Hub repo; trained.py finds it): a label for
each text or text pair (classification), the labels of each text (multi_label), its numbers (regression), an answer
span for each question (QA), the entities of each text (token classification). The share half is chosen by the task's
kind of input (PREDICTORS_BY_INPUT); what the outputs mean is the task's decoder (tasks: Task.decoder).

A predictor is the share half for one kind of input: its input side (`items`, an inputs.InputSide: which inputs it
reads, their default columns, how to check one; text_items.TextItems for texts, question_items.QuestionItems for
questions, token_predictor.TokenItems for words) and running the model on a batch, whose outputs the task's decoder
makes into one row per input (predict_batch). Reading the inputs (inputs.py), batching them
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
from nlp_transfer.use.inference import ordered, predict_lines, predictions
from nlp_transfer.use.inputs import Inputs, InputSide, Item, PredictInputs, Source, validated_inputs
from nlp_transfer.use.prediction_files import joined
from nlp_transfer.use.question_items import QuestionItems
from nlp_transfer.use.text_outputs import config_of
from nlp_transfer.use.text_predictors import TextPredictor, model_facts
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

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        """In-process predictions for a list of inputs, in order (inference.predictions)."""
        ...


def open_predictor(
    reference: str | Path, batch_size: int = 32, revision: str | None = None, runtime: Runtime | None = None
) -> Predictor:
    """The predictor for the task the model was trained on (predictor_for), on the best device by default."""
    return predictor_for(open_trained(reference, revision), batch_size, runtime)


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


class AnswerPredictor:
    """Extractive QA: the answer span of each (question, context) pair, with its score and character offsets.

    Long contexts are windowed exactly as in training and the windows of a pair merged (spans.py)."""

    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.runtime, self.tokenizer, self.model = trained.on_device(runtime)
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.items = QuestionItems(self.task, self.tokenizer)
        self.decode = trained.task.decoder(model_facts(trained, config_of(self.model)))

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
        return self.decode(batch, [answers[index] for index in range(len(batch))])

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        return predictions(self, items)


# The share half of prediction, by the task's kind of input (tasks.input_kinds): reading, batching and running the
# model; the task's own decoder (Task.decoder) turns each batch of outputs into rows.
PREDICTORS_BY_INPUT: dict[str, type[Predictor]] = {
    "texts": TextPredictor,
    "questions": AnswerPredictor,
    "words": TokenPredictor,
}


def predictor_for(trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> Predictor:
    """The predictor of the model's task, on the best device by default."""
    return PREDICTORS_BY_INPUT[trained.task.inputs.name](trained, batch_size, runtime)
