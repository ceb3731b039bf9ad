"""Token classification in the share room (the predictor of the `words` kind of input): the tag probabilities of
each word of a text (or pre-split sentence); the task's decoder makes them entities with their type, character
offsets and score, and the tag of every word.

A text is split into words as training data in span format is (tasks.token_classification.tags.words_of); words
are tokenized, windowed and merged per word exactly as in training. How a word's sub-words become its tag follows
the transformers pipeline's aggregation strategies: first (the first sub-word's scores, what the model was trained
on), average (the mean of its sub-words' probabilities), max (the tag of its most confident sub-word).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.tasks.token_classification.alignment import encode_words
from nlp_transfer.tasks.token_classification.predictions import item_words
from nlp_transfer.use.inference import predictions
from nlp_transfer.use.inputs import Item, PredictInputs, Role
from nlp_transfer.use.text_outputs import config_of
from nlp_transfer.use.text_predictors import model_facts
from nlp_transfer.use.trained import Trained

AGGREGATIONS = ("first", "average", "max")


class TokenItems:
    """A text, or (--tokens, a CoNLL file, JSONL token lists) a sentence's words, per input."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task
        self.aggregation = "first"

    def roles(self, given: PredictInputs) -> dict[str, Role]:
        if given.text_pairs:
            raise UserError("predict: --text-pair is for sentence-pair models; this run tags the words of one text")
        assert given.file is not None
        if given.tokens or given.file.suffix.lower() in (".conll", ".bio", ".iob"):
            return {"tokens": Role(self.task.get("tokens", "tokens"), "--text")}
        return {
            "text": Role(given.text_column or str(self.task.get("text") or "text"), "--text", bool(given.text_column))
        }

    def from_arguments(self, given: PredictInputs) -> list[Item]:
        if given.question is not None or given.context is not None:
            raise UserError("predict: --question/--context are for question answering runs; this run tags words")
        if given.text_pairs:
            raise UserError("predict: --text-pair is for sentence-pair models; this run tags the words of one text")
        if given.aggregation not in AGGREGATIONS:
            raise UserError(f"predict --aggregation {given.aggregation}: choose one of {', '.join(AGGREGATIONS)}")
        self.aggregation = given.aggregation
        if not given.texts:
            if given.file is None:
                raise UserError('predict: give a text ("Angela Merkel visited Paris."), --tokens WORDS, or --file')
            return []
        if given.tokens:
            return [{"tokens": list(given.texts)}]  # the arguments are the words of one sentence
        return [{"text": text} for text in given.texts]

    def check(self, item: Item, where: str) -> None:
        if "tokens" in item:
            tokens = item["tokens"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise UserError(f"predict: {where}: tokens must be a list of non-empty words")
            if not tokens:
                raise UserError(f"predict: {where}: an empty sentence (no words); give it words or drop it")

    def length(self, item: Item) -> int:
        return len(item["text"]) if "text" in item else sum(len(t) + 1 for t in item["tokens"])


class TokenPredictor:
    def __init__(self, trained: Trained, batch_size: int = 32, runtime: Runtime | None = None) -> None:
        self.runtime, self.tokenizer, self.model = trained.on_device(runtime)
        self.batch_size = batch_size
        self.task = trained.task_settings
        self.items = TokenItems(self.task)
        config = config_of(self.model)
        self.labels = [config.id2label[i] for i in range(len(config.id2label))]
        self.decode = trained.task.decoder(model_facts(trained, config))

    def word_probabilities(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """(words, K) tag probabilities per sentence, windows merged per word (mean over the windows)."""
        windows = encode_words(self.tokenizer, sentences, self.task["max_length"], self.task["stride"])
        sums = [np.zeros((len(s), len(self.labels))) for s in sentences]
        counts = [np.zeros(len(s)) for s in sentences]
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start : start + self.batch_size]
            inputs = self.tokenizer.pad([w.encoding for w in chunk], return_tensors="pt").to(self.runtime.device)
            with torch.inference_mode(), self.runtime.precision.autocast():
                logits = self.model(**inputs).logits
            probabilities = logits.float().softmax(-1).cpu().numpy()  # (B, T, K)
            for b, window in enumerate(chunk):
                self._add(window, probabilities[b], sums[window.sentence], counts[window.sentence])
        return [s / np.maximum(c, 1)[:, None] for s, c in zip(sums, counts, strict=True)]

    def _add(self, window: Any, probabilities: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> None:
        by_word: dict[int, list[np.ndarray]] = {}
        for position, word in enumerate(window.sub_words):
            if word is not None:
                by_word.setdefault(word, []).append(probabilities[position])
        for word, rows in by_word.items():
            if self.items.aggregation == "first":
                found = rows[0]
            elif self.items.aggregation == "average":
                found = np.mean(rows, axis=0)
            else:  # max: the scores of the word's most confident sub-word
                found = rows[int(np.argmax([r.max() for r in rows]))]
            sums[word] += found
            counts[word] += 1

    def predict(self, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
        return predictions(self, items)

    def predict_batch(self, batch: list[Item]) -> list[dict[str, Any]]:
        sentences = [[w.text for w in item_words(item)[1]] for item in batch]
        return self.decode(batch, self.word_probabilities(sentences))
