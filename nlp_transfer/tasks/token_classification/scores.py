"""Scores of predicted tags: entity-level precision, recall and F1 (micro, macro and per type) with seqeval in
strict IOB2 mode, and token (word) accuracy; plain tags (tag_scheme none) get tag-level F1 instead.

Predictions are repaired to valid IOB2 first (an I-X that opens an entity becomes B-X), which is how conlleval reads
a model's output; strict mode then matches conlleval exactly (tests/unit/test_token_scores.py checks hand-made
cases against conlleval's published behaviour). Windows are merged per word (WordVotes): a word read in several
windows gets the mean of its logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score, precision_recall_fscore_support

from nlp_transfer.tasks.token_classification.alignment import NO_WORD
from nlp_transfer.tasks.token_classification.tags import OUTSIDE, repair


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """precision, recall, f1 (micro over entities), macro_f1 (mean over types), per-type f1_<TYPE>, accuracy."""
    fixed = [repair(tags) for tags in predicted]
    report = classification_report(
        [list(t) for t in gold], fixed, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    micro, macro = report.pop("micro avg"), report.pop("macro avg")
    report.pop("weighted avg", None)
    scores = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "accuracy": word_accuracy(gold, fixed),
    }
    for kind, row in sorted(report.items()):
        scores[f"f1_{kind}"] = float(row["f1-score"])
    return scores


def tag_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Plain tags (part-of-speech): micro precision/recall/F1 over the tags other than O, macro F1, accuracy."""
    flat_gold = [t for tags in gold for t in tags]
    flat_pred = [t for tags in predicted for t in tags]
    kinds = sorted(set(flat_gold) - {OUTSIDE}) or sorted(set(flat_gold))
    p, r, f, _ = precision_recall_fscore_support(flat_gold, flat_pred, labels=kinds, average="micro", zero_division=0)
    macro = f1_score(flat_gold, flat_pred, labels=kinds, average="macro", zero_division=0)
    return {
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "macro_f1": float(macro),
        "accuracy": word_accuracy(gold, predicted),
    }


def word_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    return sum(g == p for g, p in pairs) / max(len(pairs), 1)


def scores_of(scheme: str, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    return tag_scores(gold, predicted) if scheme == "none" else entity_scores(gold, predicted)


class WordVotes:
    """Per sentence, the sum of each word's logits over the windows that read it, and how many did."""

    def __init__(self) -> None:
        self.sums: dict[int, np.ndarray] = {}  # sentence -> (words, K)
        self.counts: dict[int, np.ndarray] = {}  # sentence -> (words,)

    def add(self, sentence: int, word_count: int, word_ids: Sequence[int], logits: np.ndarray) -> None:
        """logits (T, K) of one window, whose tokens' word_ids name the word each first sub-word gives."""
        if sentence not in self.sums:
            self.sums[sentence] = np.zeros((word_count, logits.shape[-1]), dtype=np.float64)
            self.counts[sentence] = np.zeros(word_count, dtype=np.int64)
        for position, word in enumerate(word_ids[: len(logits)]):
            if word != NO_WORD:
                self.sums[sentence][word] += logits[position]
                self.counts[sentence][word] += 1

    def mean(self, sentence: int) -> np.ndarray:
        """(words, K): mean logits per word (every word is read by some window: windows never drop a word)."""
        return self.sums[sentence] / np.maximum(self.counts[sentence], 1)[:, None]


class TagMetrics:
    """compute_metrics for evaluation batch by batch (TrainingArguments.batch_eval_metrics), like QA's: the eval
    windows arrive in dataset order; the last call merges each sentence's windows per word and scores them."""

    def __init__(self, dataset: Any, label_names: Sequence[str], scheme: str) -> None:
        self.dataset = dataset.select_columns(["sentence", "word_ids", "gold", "words"])
        self.label_names = list(label_names)
        self.scheme = scheme
        self.votes = WordVotes()
        self.gold: dict[int, list[int]] = {}
        self.words: dict[int, list[str]] = {}  # for the report's errors file
        self.seen = 0

    def __call__(self, prediction: Any, compute_result: bool = True) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        logits = logits.detach().float().cpu().numpy() if hasattr(logits, "detach") else np.asarray(logits)
        rows = self.dataset[self.seen : self.seen + len(logits)]
        self.seen += len(logits)
        for b, sentence in enumerate(rows["sentence"]):
            gold = rows["gold"][b]
            self.votes.add(sentence, len(gold), rows["word_ids"][b], logits[b])
            self.gold[sentence] = gold
            if rows["words"][b]:
                self.words[sentence] = rows["words"][b]
        if not compute_result:
            return {}
        return scores_of(self.scheme, *self.tags())

    def tags(self) -> tuple[list[list[str]], list[list[str]]]:
        """(gold, predicted) tags of every sentence seen, in split order."""
        order = sorted(self.gold)
        names = self.label_names
        gold = [[names[i] for i in self.gold[s]] for s in order]
        predicted = [[names[i] for i in self.votes.mean(s).argmax(-1)] for s in order]
        return gold, predicted
