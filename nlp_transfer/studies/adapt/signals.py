"""How a trained classifier does on each domain: accuracy on the labelled sets, and label-free signals on the
unlabelled target corpus (what a user without target labels can use to choose a model and to distrust one): the
entropy and predicted class shares, and the target's class prior estimated without labels beside them."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import METRICS_FILE, RunFolder
from nlp_transfer.studies.adapt.label_shift import PriorEstimate, check_estimable, estimate_prior
from nlp_transfer.tasks.classification import gold_ids
from nlp_transfer.tasks.metrics import classification_metrics
from nlp_transfer.use.text_predictors import TextPredictor
from nlp_transfer.use.trained import open_trained

if TYPE_CHECKING:
    from nlp_transfer.studies.adapt.chain import Adaptation

# What each classifier of a chain leaves beside its run for the next stage (logits as the predictor returns them:
# with the folder's label-prior correction, if it has one).
CORPUS_LOGITS = "corpus_logits.npy"  # (N, K) on the target corpus
SOURCE_LOGITS = "source_eval_logits.npy"  # (M, K) on the labelled source eval split: calibration, estimation
TEST_LOGITS = "target_test_logits.npy"  # (T, K) on the labelled target test set: read by evaluation only
STAGE_LABELS = "stage_labels.json"  # the classifier's label names, in id order


def class_logits(
    run_dir: Path, texts: Sequence[str], pairs: Sequence[str] | None = None, batch_size: int = 64
) -> tuple[np.ndarray, list[str]]:
    """(N, K) logits of a complete classification run for each text (corrected for the label prior when the folder
    records one, as predict does), and the K label names; on the best device, in the precision policy's precision."""
    predictor = TextPredictor(open_trained(run_dir), batch_size=batch_size)
    names = [predictor.id2label[i] for i in range(len(predictor.id2label))]
    if not texts:
        return np.empty((0, len(names)), dtype=np.float64), names
    # Batches of similar length (reviews range from a line to pages), results in the texts' order.
    found = torch.cat(list(predictor.logits(list(texts), list(pairs) if pairs is not None else None)))
    return found.double().numpy().reshape(len(texts), len(names)), names


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


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


def prior_warnings(estimate: PriorEstimate, predicted: dict[str, float], limit: float) -> list[str]:
    """Where the label-free signals disagree: the model's predicted shares against the estimated prior (its
    decision threshold does not fit the target), and the two estimators against each other (the label-shift
    assumption itself is in doubt: the classes look different on the target)."""
    found = list(estimate.problems)
    chosen = estimate.shares(estimate.prior)
    gaps = {name: predicted[name] - chosen[name] for name in estimate.names}
    worst = max(gaps, key=lambda name: abs(gaps[name]))
    if abs(gaps[worst]) > limit:
        found.append(
            f"predicts {worst} for {100 * predicted[worst]:.0f}% of the corpus, but the estimated prior is "
            f"{100 * chosen[worst]:.0f}% ({estimate.estimator}): its decision threshold does not fit the target"
        )
    for other, values in estimate.cross_check.items():
        shares = estimate.shares(values)
        worst = max(estimate.names, key=lambda name: abs(shares[name] - chosen[name]))
        if abs(shares[worst] - chosen[worst]) > limit:
            found.append(
                f"the {estimate.estimator} and {other} estimates of {worst} differ ({100 * chosen[worst]:.0f}% vs "
                f"{100 * shares[worst]:.0f}%): the classes may look different on the target, so neither is sure"
            )
    return found


def estimate_for(adaptation: Adaptation, run_dir: Path, *, required: bool) -> PriorEstimate | None:
    """The target prior estimated from a chain classifier's saved logits. `required`: the estimate is used (to
    correct or to select pseudo-labels), so what makes it unusable is an error; otherwise None and no error."""
    source = adaptation.source
    assert source is not None
    spec = adaptation.spec.label_shift
    names = stage_label_names(run_dir)
    corpus = np.load(run_dir / CORPUS_LOGITS, allow_pickle=False)
    try:
        check_estimable(spec, names, source.eval_labels, len(corpus))
    except UserError:
        if required:
            raise
        return None
    estimate = estimate_prior(
        spec, names, np.load(run_dir / SOURCE_LOGITS, allow_pickle=False), source.eval_labels, corpus
    )
    estimate.shift_test = adaptation.shift_test
    # An estimate the label-shift test keeps from use needs no error for being unusable in other ways too.
    if required and estimate.problems and trusted(adaptation, estimate):
        raise UserError(f"adapt.label_shift: the target prior of {run_dir} cannot be used: {estimate.problems[0]}")
    return estimate


def trusted(adaptation: Adaptation, estimate: PriorEstimate) -> bool:
    """May a stage use the estimate? Not when the label-shift test rejects it and the recipe requires the test."""
    return estimate.doubt is None or adaptation.spec.label_shift.shift_test != "require"


@dataclass
class DomainLogits:
    """A chain classifier's logits on both domains, saved beside its run for the stages that follow."""

    names: list[str]  # the K class names, in id order
    corpus: np.ndarray  # (N, K) on the unlabelled target corpus
    source: np.ndarray  # (M, K) on the labelled source eval split
    test: np.ndarray | None  # (T, K) on the labelled target test set (evaluation only), when there is one

    def save(self, run_dir: Path) -> None:
        for name, values in ((CORPUS_LOGITS, self.corpus), (SOURCE_LOGITS, self.source), (TEST_LOGITS, self.test)):
            if values is not None:
                np.save(run_dir / name, values, allow_pickle=False)
        RunFolder(run_dir).write_json(STAGE_LABELS, self.names)

    @classmethod
    def load(cls, run_dir: Path) -> DomainLogits:
        test = run_dir / TEST_LOGITS
        return cls(
            stage_label_names(run_dir),
            np.load(run_dir / CORPUS_LOGITS, allow_pickle=False),
            np.load(run_dir / SOURCE_LOGITS, allow_pickle=False),
            np.load(test, allow_pickle=False) if test.is_file() else None,
        )

    def adjusted(self, scale: float, bias: list[float]) -> DomainLogits:
        """The logits the same model gives with a label-prior correction (use/label_prior.py's formula)."""

        def adjust(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values * scale + np.asarray(bias)

        corpus, source = adjust(self.corpus), adjust(self.source)
        assert corpus is not None and source is not None
        return DomainLogits(self.names, corpus, source, adjust(self.test))


def predict_domains(adaptation: Adaptation, run_dir: Path) -> DomainLogits:
    source = adaptation.source
    assert source is not None
    corpus, names = class_logits(run_dir, adaptation.corpus.texts)
    source_logits, _ = class_logits(run_dir, source.eval_texts, source.eval_pairs)
    test = adaptation.test
    test_logits = class_logits(run_dir, test.texts)[0] if test is not None and test.labels is not None else None
    return DomainLogits(names, corpus, source_logits, test_logits)


def evaluate_domains(
    adaptation: Adaptation,
    run_dir: Path,
    logits: DomainLogits | None = None,
    applied: PriorEstimate | None = None,
) -> dict[str, Any]:
    """Source eval (from the run's metrics.json), target test (labels read here only), label-free signals on the
    target corpus with the estimated target prior (or, for a corrected model, the prior it `applied`). The logits
    (predicted here unless given) are saved beside the run for the stages that follow."""
    started = time.perf_counter()
    source = adaptation.source
    assert source is not None
    logits = logits or predict_domains(adaptation, run_dir)
    logits.save(run_dir)
    names = logits.names
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))["eval"]
    result: dict[str, Any] = {
        "source_accuracy": metrics["eval_accuracy"],
        "source_macro_f1": metrics["eval_macro_f1"],
        **label_free_signals(softmax(logits.corpus), names),
    }
    estimate = applied or estimate_for(adaptation, run_dir, required=False)
    if estimate is not None:
        result["target_estimated_prior"] = estimate.shares(estimate.prior)
        result["target_prior_cross_check"] = {k: estimate.shares(v) for k, v in estimate.cross_check.items()}
        result["label_shift"] = estimate.record()
        limit = adaptation.spec.label_shift.warn_difference
        result["warnings"] = prior_warnings(estimate, result["target_predicted_shares"], limit)
    else:
        result["warnings"] = [
            f"no estimate of the target prior: the corpus ({len(logits.corpus)} texts) is under "
            f"adapt.label_shift.min_corpus_texts, or the source eval split lacks a class"
        ]
    test = adaptation.test
    if logits.test is not None and test is not None and test.labels is not None:
        where = f"adapt.target.test ({', '.join(test.sources)})"
        gold = gold_ids(test.labels, names, source.declared, where)
        result.update(target_metrics(softmax(logits.test), gold, names))
    result["eval_seconds"] = round(time.perf_counter() - started, 1)
    return result


def stage_label_names(run_dir: Path) -> list[str]:
    return list(json.loads((run_dir / STAGE_LABELS).read_text(encoding="utf-8")))
