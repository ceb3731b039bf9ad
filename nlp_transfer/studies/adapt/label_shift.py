"""The target domain's class prior, estimated without target labels, and the logit correction it implies.

A classifier trained on the source carries the source's class prior (and its decision threshold) into the target:
a movie-review model calls 44-48% of product reviews positive whether 30% or 70% are. Two classic estimators read the
target prior off the model's outputs on the unlabelled target corpus:

- em (Saerens, Latinne & Decaestecker 2002, "maximum likelihood label shift"): calibrate the model on the labelled
  source eval split, then alternate "re-weight each posterior by target prior / source prior" and "the prior is the
  mean re-weighted posterior" until it stops moving. With bias-corrected temperature scaling as the calibration this
  is the estimator Alexandari et al. 2020 found hard to beat.
- bbse (black-box shift estimation, Lipton, Wang & Smola 2018): the source confusion matrix C[i, j] = P(predict i,
  true j) and the target's predicted shares mu give the target prior through C w = mu.

Both assume label shift: the classes look on the target as they did on the source. Between domains they never look
quite the same, so each estimate is reported with the other beside it, and the adapt table warns when they, or the
estimate and the model's own predicted shares, disagree strongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import LabelShiftSpec
from nlp_transfer.studies.adapt.shift_test import ShiftTest


@dataclass(frozen=True)
class Calibration:
    """softmax(logits * scale + bias): temperature scaling (scale = 1 / T) with a per-class bias (BCTS)."""

    method: str
    scale: float = 1.0
    bias: tuple[float, ...] | None = None  # (K,); None: no bias

    def log_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """(N, K) logits -> (N, K) calibrated log-probabilities."""
        z = np.asarray(logits, dtype=np.float64) * self.scale
        if self.bias is not None:
            z = z + np.asarray(self.bias)
        return z - _logsumexp(z)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return np.exp(self.log_probabilities(logits))


def fit_calibration(logits: np.ndarray, labels: np.ndarray, method: str) -> Calibration:
    """Fit the calibration on the labelled source eval split by minimising the negative log-likelihood. The loss is
    convex in (scale, bias) (a multinomial logistic regression on the logits), so L-BFGS finds the optimum."""
    if method == "none":
        return Calibration("none")
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    scale = torch.ones((), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=method == "bcts")
    parameters = [scale, bias] if method == "bcts" else [scale]
    optimizer = torch.optim.LBFGS(parameters, max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * scale + bias, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted_scale = float(scale.detach())
    fitted_bias = (bias.detach() - bias.detach().mean()).tolist()  # softmax ignores a shared shift: centre it
    if not np.isfinite([fitted_scale, *fitted_bias]).all() or fitted_scale <= 0:
        raise UserError(
            "adapt.label_shift: calibrating the classifier on the source eval split failed (its logits may be "
            "constant); set adapt.label_shift.calibration: none"
        )
    return Calibration(method, fitted_scale, tuple(fitted_bias) if method == "bcts" else None)


@dataclass
class EmResult:
    prior: np.ndarray  # (K,)
    iterations: int
    converged: bool


def em_prior(probabilities: np.ndarray, source_prior: np.ndarray, max_iterations: int, tolerance: float) -> EmResult:
    """Saerens et al.'s EM on (N, K) calibrated source posteriors of the target texts."""
    prior = source_prior.copy()
    for iteration in range(1, max_iterations + 1):
        weighted = probabilities * (prior / source_prior)  # (N, K): posteriors under the current target prior
        updated = (weighted / weighted.sum(axis=1, keepdims=True)).mean(axis=0)
        if np.abs(updated - prior).max() < tolerance:
            return EmResult(updated, iteration, True)
        prior = updated
    return EmResult(prior, max_iterations, False)


def bbse_prior(
    source_predicted: np.ndarray, source_labels: np.ndarray, target_predicted: np.ndarray, k: int
) -> np.ndarray | None:
    """Lipton et al.'s black-box shift estimate from hard predictions (class ids) on both domains; None when the
    source confusion matrix cannot be inverted (the classifier never predicts some class on the source) or the solved
    prior has no positive share left after clipping (cannot happen when every class occurs on the source: C w = t
    with t summing to 1 leaves some w positive; kept as "no estimate" rather than a uniform guess)."""
    confusion = np.zeros((k, k))  # [predicted, true], joint shares on the source eval split
    np.add.at(confusion, (source_predicted, source_labels), 1.0 / len(source_labels))
    target_shares = np.bincount(target_predicted, minlength=k) / len(target_predicted)
    if np.linalg.matrix_rank(confusion) < k:
        return None
    weights = np.linalg.solve(confusion, target_shares)  # target prior / source prior, per class
    prior = np.clip(weights * confusion.sum(axis=0), 0.0, None)
    return prior / prior.sum() if prior.sum() > 0 else None


@dataclass
class PriorEstimate:
    """The target prior by the chosen estimator, the other estimator's as a cross-check, and how to correct logits."""

    names: list[str]
    estimator: str
    prior: np.ndarray  # (K,) the chosen estimator's target prior
    cross_check: dict[str, np.ndarray]  # the other estimator -> its (K,) estimate
    source_prior: np.ndarray  # (K,) the class shares of the calibration split
    calibration: Calibration
    iterations: int | None
    converged: bool
    corpus_texts: int
    problems: list[str] = field(default_factory=list)  # non-convergence, a degenerate prior: unusable for correction
    shift_test: ShiftTest | None = None  # the label-shift test of the corpus (shift_test.py), when it ran

    @property
    def doubt(self) -> str | None:
        """What the label-shift test found, when it rejects the assumption this estimate rests on."""
        tested = self.shift_test
        return tested.finding() if tested is not None and tested.rejects_label_shift else None

    def logit_adjustment(self) -> tuple[float, list[float]]:
        """(scale, bias) with softmax(logits * scale + bias) the calibrated posterior under the target prior."""
        bias = np.asarray(self.calibration.bias or np.zeros(len(self.names)))
        bias = bias + np.log(self.prior) - np.log(self.source_prior)
        return self.calibration.scale, [float(b) for b in bias - bias.mean()]

    def shares(self, values: np.ndarray) -> dict[str, float]:
        return {name: round(float(v), 4) for name, v in zip(self.names, values, strict=True)}

    def record(self) -> dict[str, Any]:
        """What label_prior.json and the stage metrics keep of the estimate."""
        return {
            "estimator": self.estimator,
            "target_prior": self.shares(self.prior),
            "cross_check": {name: self.shares(values) for name, values in self.cross_check.items()},
            "source_prior": self.shares(self.source_prior),
            "calibration": {"method": self.calibration.method, "temperature": 1 / self.calibration.scale}
            | ({"bias": list(self.calibration.bias)} if self.calibration.bias is not None else {}),
            "em_iterations": self.iterations,
            "converged": self.converged,
            "corpus_texts": self.corpus_texts,
            "problems": self.problems,
            "shift_test": self.shift_test.record() if self.shift_test is not None else None,
        }


def check_estimable(spec: LabelShiftSpec, names: list[str], source_labels: np.ndarray, corpus_texts: int) -> None:
    """What can be checked before any training: every class in the calibration split, a corpus big enough."""
    counts = np.bincount(source_labels, minlength=len(names))
    missing = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if missing:
        raise UserError(
            f"adapt.label_shift: the source eval split (data.eval) has no example of class {', '.join(missing)}; the "
            "target prior is estimated against it, so it needs every class: point data.eval at a split that has them"
        )
    if corpus_texts < spec.min_corpus_texts:
        raise UserError(
            f"adapt.target.corpus: {corpus_texts} texts are too few to estimate the target's class prior from "
            f"(adapt.label_shift.min_corpus_texts is {spec.min_corpus_texts}); add target texts, or drop the stages "
            "that need the estimate (prior_correction, self_train with proportions: estimated)"
        )


def estimate_prior(
    spec: LabelShiftSpec,
    names: list[str],
    source_logits: np.ndarray,
    source_labels: np.ndarray,
    target_logits: np.ndarray,
) -> PriorEstimate:
    """The target prior from (M, K) logits on the labelled source eval split and (N, K) logits on the corpus."""
    k = len(names)
    calibration = fit_calibration(source_logits, source_labels, spec.calibration)
    source_prior = np.bincount(source_labels, minlength=k) / len(source_labels)
    target_probabilities = calibration.probabilities(target_logits)
    em = em_prior(target_probabilities, source_prior, spec.max_iterations, spec.tolerance)
    bbse = bbse_prior(
        calibration.log_probabilities(source_logits).argmax(axis=1),
        source_labels,
        target_probabilities.argmax(axis=1),
        k,
    )
    found = {"em": em.prior} | ({"bbse": bbse} if bbse is not None else {})
    problems = []
    if spec.estimator == "em" and not em.converged:
        problems.append(
            f"EM did not converge in {spec.max_iterations} iterations (raise adapt.label_shift.max_iterations, or "
            "use estimator: bbse)"
        )
    if bbse is None and spec.estimator == "bbse":
        problems.append(
            "bbse gives no estimate here: the classifier does not predict every class on the source eval split, or "
            "the solved prior is zero everywhere (use estimator: em)"
        )
    chosen = found.get(spec.estimator, em.prior)
    rare = [f"{name} {100 * share:.1f}%" for name, share in zip(names, chosen, strict=True) if share < spec.min_share]
    if rare:
        problems.append(
            f"the estimated prior is degenerate ({', '.join(rare)}, below adapt.label_shift.min_share "
            f"{spec.min_share:g}): the corpus may hold no such texts, or the classifier cannot tell them apart there"
        )
    return PriorEstimate(
        names=names,
        estimator=spec.estimator,
        prior=chosen,
        cross_check={name: values for name, values in found.items() if name != spec.estimator},
        source_prior=source_prior,
        calibration=calibration,
        iterations=em.iterations,
        converged=em.converged,
        corpus_texts=len(target_logits),
        problems=problems,
    )


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    return top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
