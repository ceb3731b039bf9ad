"""The multi-label losses (task.loss): one sigmoid per label, logits (B, L) against 0/1 labels (B, L), the mean over
every (text, label) term, as binary cross-entropy has always been. Positive weights (class_weights) scale each
label's positive term in all three.

- bce: -w y log p - (1 - y) log(1 - p)
- focal (Lin et al. 2017): -a w y (1 - p)^g log p - (1 - a) (1 - y) p^g log(1 - p); without alpha, a = 1 - a = 1
- asymmetric, ASL (Ridnik et al. 2021): -w y (1 - p)^g+ log p - (1 - y) q^g- log(1 - q), q = max(p - clip, 0)

With gamma 0 (and no alpha, no clip) focal and asymmetric are binary cross-entropy: the tests check that.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from nlp_transfer.recipe.loss_specs import AsymmetricLoss, BinaryCrossEntropyLoss, FocalLoss
from nlp_transfer.tasks.base import LossOnLogits

LossSpec = BinaryCrossEntropyLoss | FocalLoss | AsymmetricLoss


def binary_cross_entropy(weights: Sequence[float] | None) -> LossOnLogits:
    """One sigmoid per label: logits (B, L), labels (B, L) 0/1; positive terms weighted per label when given."""
    table = torch.tensor(weights, dtype=torch.float32) if weights is not None else None

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = table.to(logits.device) if table is not None else None
        return functional.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weight)

    return loss


def focal(gamma: float, alpha: float | None, weights: Sequence[float] | None) -> LossOnLogits:
    table = torch.tensor(weights, dtype=torch.float32) if weights is not None else None

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits, labels = logits.float(), labels.float()
        # p, 1 - p, log p and log(1 - p) from the logits: exact where the sigmoid rounds to 0 or 1
        positive = _focusing(torch.sigmoid(-logits), gamma) * functional.logsigmoid(logits)  # (B, L)
        negative = _focusing(torch.sigmoid(logits), gamma) * functional.logsigmoid(-logits)
        if alpha is not None:
            positive, negative = alpha * positive, (1 - alpha) * negative
        return -_weighted(labels * positive, table) - (1 - labels) * negative

    return lambda logits, labels: loss(logits, labels).mean()


def asymmetric(gamma_neg: float, gamma_pos: float, clip: float, weights: Sequence[float] | None) -> LossOnLogits:
    table = torch.tensor(weights, dtype=torch.float32) if weights is not None else None

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits, labels = logits.float(), labels.float()
        positive = _focusing(torch.sigmoid(-logits), gamma_pos) * functional.logsigmoid(logits)
        if clip > 0:
            shifted = (torch.sigmoid(logits) - clip).clamp(min=0)  # q: a negative scored below clip costs nothing
            log_not = torch.log(1 - shifted)  # 1 - q >= 1 - (1 - clip) > 0: finite
        else:
            shifted, log_not = torch.sigmoid(logits), functional.logsigmoid(-logits)
        negative = _focusing(shifted, gamma_neg) * log_not
        return -_weighted(labels * positive, table) - (1 - labels) * negative

    return lambda logits, labels: loss(logits, labels).mean()


def _focusing(base: torch.Tensor, gamma: float) -> torch.Tensor:
    """base^gamma, with 0^gamma's infinite gradient (gamma < 1) kept out of the backward pass by a tiny floor."""
    return base.clamp(min=1e-12).pow(gamma) if gamma > 0 else torch.ones_like(base)


def _weighted(terms: torch.Tensor, table: torch.Tensor | None) -> torch.Tensor:
    """Positive terms (B, L) times each label's positive weight."""
    return terms * table.to(terms.device) if table is not None else terms


def loss_for(spec: LossSpec, weights: Sequence[float] | None) -> LossOnLogits:
    """The recipe's task.loss with the run's positive weights (task.json's positive_weights)."""
    if isinstance(spec, FocalLoss):
        return focal(spec.gamma, spec.alpha, weights)
    if isinstance(spec, AsymmetricLoss):
        return asymmetric(spec.gamma_neg, spec.gamma_pos, spec.clip, weights)
    return binary_cross_entropy(weights)
