"""A classifier's correction for its target domain's label prior (label_prior.json), applied wherever its class
probabilities are computed: predict, evaluate, and the graph `export --onnx` writes.

Domain adaptation (`nlp-transfer adapt`, stage prior_correction) estimates the target domain's class shares without
labels and records how to correct the model's logits for them. The correction is affine in the logits,

    corrected logits = logits * logit_scale + logit_bias          (N, K) -> (N, K)

where logit_scale (1 / temperature) and part of logit_bias calibrate the model (fitted on the source eval split),
and the rest of logit_bias is log(target prior / source prior) (Saerens et al. 2002): the Bayes-optimal posterior
under the target's prior. The file also records where the numbers came from; only these three fields are read here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import LABEL_PRIOR_FILE


@dataclass(frozen=True)
class LabelPrior:
    labels: list[str]  # class names in id order: the model's
    logit_scale: float
    logit_bias: list[float]  # (K,)
    target_prior: dict[str, float]

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., K) logits -> the corrected (..., K) logits, in the logits' own dtype and device."""
        bias = torch.as_tensor(self.logit_bias, dtype=logits.dtype, device=logits.device)
        return logits * self.logit_scale + bias


def read_label_prior(folder: Path, labels: list[str]) -> LabelPrior | None:
    """The folder's prior correction (None when it has none), checked against the model's class names."""
    path = folder / LABEL_PRIOR_FILE
    if not path.is_file():
        return None
    where = f"{path}: damaged or not written by nlp-transfer"
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        prior = LabelPrior(
            labels=[str(name) for name in raw["labels"]],
            logit_scale=float(raw["logit_scale"]),
            logit_bias=[float(value) for value in raw["logit_bias"]],
            target_prior={str(k): float(v) for k, v in raw.get("target_prior", {}).items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{where} ({err}); delete it to predict without the correction, or copy the folder again"
        ) from err
    values = [prior.logit_scale, *prior.logit_bias]
    if not all(math.isfinite(v) for v in values) or prior.logit_scale <= 0 or len(prior.logit_bias) != len(labels):
        raise UserError(f"{where} (needs a positive logit_scale and {len(labels)} finite logit_bias values)")
    if prior.labels != labels:
        raise UserError(
            f"{path}: corrects the classes {prior.labels}, but the model predicts {labels}; it belongs to another "
            "model: delete it, or put the model it came with back"
        )
    return prior
