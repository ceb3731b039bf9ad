"""Predict with a trained model (a run folder, a copy of one, or a pushed Hub repo; trained.py finds it): a label for
each text (classification), an answer span for each question (QA). PREDICTORS picks the predictor from the task the
model was trained on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from transformers import AutoTokenizer

from nlp_transfer.core.errors import UserError
from nlp_transfer.share.label_prior import read_label_prior
from nlp_transfer.share.trained import Trained, open_trained
from nlp_transfer.tasks import spans


def read_texts(path: Path, field: str = "text") -> list[str]:
    """A .jsonl file (one object per line, text in `field`) or a plain file with one text per line."""
    lines = _nonempty_lines(path, "a .txt (one text per line) or .jsonl file")
    if path.suffix.lower() != ".jsonl":
        return lines
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            texts.append(str(json.loads(line)[field]))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"--file {path} line {number}: expected a JSON object with a '{field}' field") from err
    return texts


def read_pairs(path: Path, question_field: str, context_field: str) -> list[dict[str, Any]]:
    """A .jsonl file of {question, context} objects (other fields, such as an id, are passed through)."""
    fields = f"'{question_field}' and '{context_field}'"
    pairs = []
    for number, line in enumerate(_nonempty_lines(path, f"a .jsonl file with {fields}"), start=1):
        try:
            row = json.loads(line)
            pairs.append(row | {"question": str(row[question_field]), "context": str(row[context_field])})
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"--file {path} line {number}: expected a JSON object with {fields}") from err
    return pairs


def _nonempty_lines(path: Path, expected: str) -> list[str]:
    if not path.is_file():
        raise UserError(f"--file {path}: not found; pass {expected}")
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as err:
        raise UserError(f"--file {path}: not valid utf-8; convert it to utf-8") from err


@dataclass
class PredictInputs:
    """What the user passed to `nlp-transfer predict`; each task's predictor takes what it reads."""

    texts: list[str]
    file: Path | None
    question: str | None
    context: str | None


class Predictor(Protocol):
    def __init__(self, trained: Trained, batch_size: int) -> None: ...

    def read(self, given: PredictInputs) -> list[Any]: ...

    def predict(self, inputs: list[Any]) -> Iterator[dict[str, Any]]: ...


def open_predictor(reference: str | Path, batch_size: int = 32, revision: str | None = None) -> Predictor:
    """The predictor for the task the model was trained on (PREDICTORS below)."""
    trained = open_trained(reference, revision)
    return PREDICTORS[trained.recipe["task"]["name"]](trained, batch_size)


class LabelPredictor:
    """Classification: label and probabilities for each text."""

    def __init__(self, trained: Trained, batch_size: int = 32) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(trained.folder)
        self.model = trained.load()
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.max_length = int(self.task["max_length"])  # truncate as training did
        self.id2label = _config_of(self.model).id2label
        # An adapted model's correction for its target domain's label prior (label_prior.json; None: none).
        self.label_prior = read_label_prior(trained.folder, [self.id2label[i] for i in range(len(self.id2label))])

    def read(self, given: PredictInputs) -> list[Any]:
        if given.question is not None or given.context is not None:
            raise UserError("predict: --question/--context are for question answering runs; this run classifies texts")
        texts = given.texts + (read_texts(given.file) if given.file else [])
        if not texts:
            raise UserError("predict: give texts as arguments or --file FILE")
        return texts

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> Iterator[torch.Tensor]:
        """(batch, num_labels) logits, batch by batch, corrected for the label prior when the model records one;
        `pairs` are the second texts of a text-pair task."""
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            second = pairs[start : start + self.batch_size] if pairs is not None else None
            inputs = self.tokenizer(
                batch, second, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            )
            with torch.inference_mode():
                logits = self.model(**inputs).logits
            yield logits if self.label_prior is None else self.label_prior.adjust(logits)

    def predict(self, texts: list[str]) -> Iterator[dict[str, Any]]:
        id2label = self.id2label
        batches = (texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size))
        for batch, logits in zip(batches, self.logits(texts), strict=True):
            for text, row in zip(batch, logits.softmax(dim=-1).tolist(), strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                yield {
                    "text": text,
                    "label": id2label[best],
                    "probability": round(row[best], 6),
                    "probabilities": {id2label[i]: round(p, 6) for i, p in enumerate(row)},
                }


class AnswerPredictor:
    """Extractive QA: the answer span of each (question, context) pair, with its score and character offsets.

    Long contexts are windowed exactly as in training and the windows of a pair merged (spans.py)."""

    def __init__(self, trained: Trained, batch_size: int = 32) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(trained.folder)
        self.model = trained.load()
        self.batch_size = batch_size
        self.task = trained.task_settings

    def read(self, given: PredictInputs) -> list[Any]:
        if given.texts:
            raise UserError('predict: this run answers questions; use --question "..." --context "..." or --file')
        if (given.question is None) != (given.context is None):
            raise UserError("predict: give both --question and --context")
        pairs, places = [], []
        if given.question is not None:
            pairs.append({"question": given.question, "context": given.context})
            places.append("--question/--context")
        if given.file:
            from_file = read_pairs(given.file, self.task["question"], self.task["context"])
            pairs += from_file
            places += [f"--file {given.file} pair {number}" for number in range(1, len(from_file) + 1)]
        if not pairs:
            raise UserError('predict: give --question "..." --context "..." or --file PAIRS.jsonl')
        for pair, place in zip(pairs, places, strict=True):
            self._check(pair, place)
        return pairs

    def _check(self, pair: dict[str, Any], where: str) -> None:
        if not pair["question"].strip() or not pair["context"].strip():
            raise UserError(f"predict: {where}: the question and the context must not be empty")
        length = spans.question_lengths(self.tokenizer, [pair["question"].lstrip()])[0]
        if spans.context_room(self.tokenizer, length, self.task["max_length"]) <= self.task["stride"]:
            raise UserError(
                f"predict: {where}: the question ({length} tokens) leaves no room for the context in the "
                f"{self.task['max_length']}-token windows this model was trained with; shorten the question"
            )

    def predict(self, pairs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        task = self.task
        for begin in range(0, len(pairs), self.batch_size):
            batch = pairs[begin : begin + self.batch_size]
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
                inputs = self.tokenizer.pad([w.encoding for w in chunk], return_tensors="pt")
                with torch.inference_mode():
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
            for index, pair in enumerate(batch):
                answer = answers[index]
                yield {
                    **{k: v for k, v in pair.items() if k != "context"},
                    "answer": answer.text,
                    "score": round(answer.score, 6),
                    "start": answer.start,
                    "end": answer.end,
                }


PREDICTORS: dict[str, type[Predictor]] = {"classification": LabelPredictor, "qa": AnswerPredictor}


def _config_of(model: nn.Module) -> Any:
    """The transformers config, whatever wraps the model (a peft adapter, a probe's pooling)."""
    inner = getattr(model, "model", None)
    return getattr(model, "config", None) or getattr(inner, "config", None)
