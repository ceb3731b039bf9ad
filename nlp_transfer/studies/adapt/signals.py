"""How a trained classifier does on each domain: accuracy on the labelled sets, and label-free signals on the
unlabelled target corpus (what a user without target labels can use to choose a model)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nlp_transfer.share.predict import open_predictor
from nlp_transfer.tasks.metrics import classification_metrics


def class_probabilities(run_dir: Path, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
    """(N, K) class probabilities of a complete classification run for each text, and the K label names."""
    predictor: Any = open_predictor(run_dir, batch_size=batch_size)  # the best device, the precision policy's
    names = [predictor.id2label[i] for i in range(len(predictor.id2label))]
    # Batches of similar length (reviews range from a line to pages), results in corpus order.
    logits = torch.cat(list(predictor.logits(list(texts)))) if texts else torch.empty(0, len(names))
    return logits.softmax(dim=-1).double().numpy(), names


def label_free_signals(probabilities: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Mean prediction entropy (0 = certain, 1 = uniform; normalised by log K) and the predicted class shares,
    with their balance (entropy of the shares, 1 = every class predicted equally often)."""
    k = probabilities.shape[1]
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = float(np.mean(-(clipped * np.log(clipped)).sum(axis=1)) / math.log(k))
    shares = np.bincount(probabilities.argmax(axis=1), minlength=k) / len(probabilities)
    nonzero = shares[shares > 0]
    return {
        "target_entropy": round(entropy, 4),
        "target_predicted_shares": {name: round(float(s), 4) for name, s in zip(names, shares, strict=True)},
        "target_balance": round(float(-(nonzero * np.log(nonzero)).sum() / math.log(k)), 4),
        "target_mean_confidence": round(float(probabilities.max(axis=1).mean()), 4),
    }


def target_metrics(probabilities: np.ndarray, gold: np.ndarray, names: list[str]) -> dict[str, float]:
    found = classification_metrics(gold, probabilities.argmax(axis=1), names)
    return {"target_accuracy": found["accuracy"], "target_macro_f1": found["macro_f1"]}
