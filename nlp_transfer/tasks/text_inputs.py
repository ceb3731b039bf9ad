"""How a text (or a text pair) becomes model inputs, for the three text tasks (classification, multi_label,
regression), in training, evaluation and predict alike.

A text longer than `max_length` tokens is cut by `truncation`:
  head       its start (the tokenizer's own truncation)
  tail       its end
  head_tail  `head_tokens` from the start and the rest from the end (Sun et al. 2019, "How to fine-tune BERT for
             text classification": the head and tail of a review carry most of its verdict)
  windows    all of it, in windows of max_length tokens that overlap by `stride` (the QA windows, spans.py); each
             window is one row labelled with its text's label, and `documents` says which text a row came from, so
             evaluation and predict pool the windows' outputs per text (pool_windows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from nlp_transfer.tasks.spans import overflowing_windows

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DOCUMENT = "document"  # column of windowed splits: the row (text) of the split that a window came from


@dataclass(frozen=True)
class TextInputs:
    """The task fields that decide a text's tokens (recipe.task_specs), from a task config or a recorded recipe."""

    max_length: int
    truncation: str = "head"
    stride: int = 32
    head_tokens: int | None = None
    window_pooling: str = "mean"

    @classmethod
    def of(cls, task: Any) -> TextInputs:
        """From a task config, or a recipe's task mapping (a run recorded before these fields existed: head)."""
        found = dict(task) if isinstance(task, Mapping) else {n: getattr(task, n, None) for n in cls.__annotations__}
        return cls(
            max_length=int(found["max_length"] or 0),
            truncation=found.get("truncation") or "head",
            stride=int(found.get("stride") or 0) if found.get("stride") is not None else 32,
            head_tokens=found.get("head_tokens"),
            window_pooling=found.get("window_pooling") or "mean",
        )

    @property
    def windowed(self) -> bool:
        return self.truncation == "windows"

    def settings(self) -> dict[str, Any]:
        """What the tokenization cache key needs to know."""
        return {
            "max_length": self.max_length,
            "truncation": self.truncation,
            "stride": self.stride if self.windowed else None,
            "head_tokens": self.head_tokens,
        }


@dataclass
class Encoded:
    rows: dict[str, list[list[int]]]  # input_ids, attention_mask (, token_type_ids): one row per text or window
    documents: list[int]  # for each row, the index of the text it came from


def encode_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    inputs: TextInputs,
    pad_to_max_length: bool = False,
) -> Encoded:
    """Token ids for each text (pair), truncated as `inputs` says; windows give several rows per long text."""
    names = [n for n in MODEL_INPUTS if n in tokenizer.model_input_names]
    if inputs.windowed:
        found = overflowing_windows(tokenizer, texts, pairs, max_length=inputs.max_length, stride=inputs.stride)
        rows = {n: [w.encoding[n] for w in found if n in w.encoding] for n in names}
        encoded = Encoded({n: r for n, r in rows.items() if r}, [w.example for w in found])
    elif inputs.truncation == "head":
        done = tokenizer(
            list(texts), list(pairs) if pairs is not None else None, truncation=True, max_length=inputs.max_length
        )
        encoded = Encoded({n: list(done[n]) for n in names if n in done}, list(range(len(texts))))
    else:
        encoded = Encoded(_ends(tokenizer, texts, inputs, names), list(range(len(texts))))
    if pad_to_max_length:
        padded = tokenizer.pad(encoded.rows, padding="max_length", max_length=inputs.max_length)
        encoded.rows = {n: [list(r) for r in padded[n]] for n in encoded.rows}
    return encoded


def _ends(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], inputs: TextInputs, names: list[str]) -> Any:
    """tail / head_tail: the text's tokens without special tokens, cut, then wrapped in the model's special tokens
    (the same ones the tokenizer adds to a single text: [CLS] ... [SEP] for BERT, <s> ... </s> for RoBERTa)."""
    prefix, suffix = special_tokens(tokenizer)
    room = inputs.max_length - len(prefix) - len(suffix)
    head = inputs.head_tokens if inputs.head_tokens is not None else room // 4
    kept = []
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        if len(ids) > room:
            ids = (
                ids[len(ids) - room :] if inputs.truncation == "tail" else ids[:head] + ids[len(ids) - (room - head) :]
            )
        kept.append(prefix + list(ids) + suffix)
    rows: dict[str, list[list[int]]] = {"input_ids": kept, "attention_mask": [[1] * len(ids) for ids in kept]}
    if "token_type_ids" in names:
        rows["token_type_ids"] = [[0] * len(ids) for ids in kept]
    return rows


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text, read off a probe text."""
    probe = "hello world"
    with_special = list(tokenizer(probe)["input_ids"])
    plain = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            return with_special[:start], with_special[start + len(plain) :]
    raise ValueError(f"{type(tokenizer).__name__}: cannot tell its special tokens apart from a text's")


def pool_windows(
    outputs: np.ndarray, labels: np.ndarray | None, documents: Sequence[int], pooling: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Window rows -> one row per text: outputs (W, K) pooled (mean or max) over each text's windows, in the order
    the texts first appear; a text's windows all carry its label, so its first window's label is kept."""
    order, first, inverse = np.unique(np.asarray(documents), return_index=True, return_inverse=True)
    appearance = np.argsort(first)  # texts in the order they first appear (windows come in text order)
    outputs = outputs.astype(np.float64)
    if pooling == "max":
        pooled = np.full((len(order), *outputs.shape[1:]), -np.inf)
        np.maximum.at(pooled, inverse, outputs)
    else:
        pooled = np.zeros((len(order), *outputs.shape[1:]))
        np.add.at(pooled, inverse, outputs)
        pooled /= np.bincount(inverse, minlength=len(order)).reshape(-1, *([1] * (outputs.ndim - 1)))
    kept = labels[first][appearance] if labels is not None else None
    return pooled[appearance].astype(np.float32), kept


def document_ids(dataset: Any) -> list[int] | None:
    """The document column of a windowed split (tokenized rows, or cached probe features that carry it)."""
    if DOCUMENT in getattr(dataset, "column_names", ()):
        return list(dataset[DOCUMENT])
    found = getattr(dataset, "documents", None)
    return list(found) if found is not None else None


def describe_inputs(task: Any) -> str:
    """What a text task reads, in words, for its model card."""
    return f"pairs of texts ({task.text}, {task.text_pair})" if task.text_pair else "a text"


def long_texts(task: Any) -> str:
    """What the model does with a text longer than it reads at once, in a sentence for its model card."""
    if task.truncation == "windows":
        return (
            f" A text longer than {task.max_length} tokens is read in overlapping windows (stride {task.stride}) "
            f"whose outputs are {task.window_pooling}-pooled (`nlp-transfer predict` does this; a plain pipeline "
            "keeps only the first window)."
        )
    kept = {"head": "its start", "tail": "its end", "head_tail": "its start and its end"}[task.truncation]
    return f" A text longer than {task.max_length} tokens is cut to {kept}."
