"""Label shift: estimating a target's class prior without its labels (EM, BBSE), calibration, pseudo-label quotas,
and the correction a model folder records (label_prior.json) as predict, evaluate, export and push apply it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.recipe import LabelShiftSpec
from nlp_transfer.studies.adapt.label_shift import (
    bbse_prior,
    check_estimable,
    em_prior,
    estimate_prior,
    fit_calibration,
)
from nlp_transfer.studies.adapt.selftrain import quotas, select_pseudo_labels
from nlp_transfer.use.hub import MODEL_FILE_PATTERNS
from nlp_transfer.use.predict import open_predictor
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv

NAMES = ["negative", "positive", "neutral"]


def _logits(labels: np.ndarray, rng: np.random.Generator, separation: float = 2.0, scale: float = 1.0) -> np.ndarray:
    """Label-shift data: each class's (N, K) logits drawn from the same distribution on both domains (its own
    logit raised by `separation`), so only the class shares differ between domains."""
    logits = rng.normal(size=(len(labels), 3))
    logits[np.arange(len(labels)), labels] += separation
    return logits * scale


def _labels(shares: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(shares), size=n, p=shares)


# ---- estimators -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]])
@pytest.mark.parametrize("estimator", ["em", "bbse"])
def test_both_estimators_recover_a_shifted_prior(target: list[float], estimator: str) -> None:
    rng = np.random.default_rng(0)
    source_labels = _labels([0.4, 0.4, 0.2], 3000, rng)
    target_labels = _labels(target, 6000, rng)
    # An overconfident model (logits x 3): calibration has to undo it for EM to be right.
    source, corpus = _logits(source_labels, rng, scale=3.0), _logits(target_labels, rng, scale=3.0)
    estimate = estimate_prior(LabelShiftSpec(estimator=estimator), NAMES, source, source_labels, corpus)
    truth = np.bincount(target_labels, minlength=3) / len(target_labels)
    assert np.abs(estimate.prior - truth).max() < 0.03, (estimate.prior, truth)
    assert np.abs(estimate.cross_check[{"em": "bbse", "bbse": "em"}[estimator]] - truth).max() < 0.03
    assert estimate.problems == []
    # The argmax shares are far from the truth on the skewed targets; the estimate is what fixes that.
    predicted = np.bincount(softmax_argmax(corpus), minlength=3) / len(corpus)
    if max(target) > 0.5:
        assert np.abs(predicted - truth).max() > 0.05


def softmax_argmax(logits: np.ndarray) -> np.ndarray:
    return logits.argmax(axis=1)


def test_calibration_undoes_a_temperature_and_a_bias() -> None:
    rng = np.random.default_rng(1)
    labels = _labels([0.5, 0.3, 0.2], 5000, rng)
    true_logits = _logits(labels, rng)
    # What a miscalibrated model would output: logits x 4 and a lean towards class 0. The Bayes posterior of this
    # data is softmax(2 z + log prior) (unit-variance classes 2 apart), so the fit should find scale 2/4 and a bias
    # b0 - b1 = log(0.5 / 0.3) - 2 * 0.5 = -0.49.
    shown = true_logits * 4 + np.array([2.0, 0.0, 0.0])
    bcts = fit_calibration(shown, labels, "bcts")
    assert bcts.scale == pytest.approx(0.5, rel=0.1)
    assert bcts.bias is not None and bcts.bias[0] - bcts.bias[1] == pytest.approx(-0.49, abs=0.15)
    temperature = fit_calibration(shown, labels, "temperature")
    assert temperature.bias is None and temperature.scale < 0.5
    assert fit_calibration(shown, labels, "none").scale == 1.0
    # Calibrated: the mean predicted probability of each class is its share (what EM needs to start from).
    shares = np.bincount(labels, minlength=3) / len(labels)
    assert np.abs(bcts.probabilities(shown).mean(axis=0) - shares).max() < 0.01


def test_em_on_an_unshifted_target_stays_at_the_source_prior() -> None:
    rng = np.random.default_rng(2)
    labels = _labels([0.5, 0.3, 0.2], 4000, rng)
    probabilities = fit_calibration(_logits(labels, rng), labels, "bcts").probabilities(_logits(labels, rng))
    found = em_prior(probabilities, np.array([0.5, 0.3, 0.2]), 1000, 1e-8)
    assert found.converged and np.abs(found.prior - [0.5, 0.3, 0.2]).max() < 0.03


def test_an_unusable_estimate_says_why() -> None:
    rng = np.random.default_rng(3)
    source_labels = _labels([0.4, 0.4, 0.2], 2000, rng)
    source = _logits(source_labels, rng)
    # Not converged within the allowed iterations.
    corpus = _logits(_labels([0.8, 0.1, 0.1], 2000, rng), rng)
    slow = estimate_prior(LabelShiftSpec(max_iterations=2), NAMES, source, source_labels, corpus)
    assert not slow.converged and "did not converge in 2 iterations" in slow.problems[0]
    # A corpus with no text of class 2: the estimate puts it at (nearly) 0%.
    only_two = _logits(_labels([0.5, 0.5, 0.0], 2000, rng), rng, separation=6.0)
    sharp = _logits(source_labels, rng, separation=6.0)
    degenerate = estimate_prior(LabelShiftSpec(min_share=0.01), NAMES, sharp, source_labels, only_two)
    assert any("degenerate (neutral" in problem for problem in degenerate.problems)
    # BBSE cannot invert the confusion matrix of a classifier that never predicts some class on the source.
    assert bbse_prior(np.zeros(10, dtype=int), np.arange(10) % 3, np.zeros(5, dtype=int), 3) is None
    never_neutral = np.where(source_labels == 2, 1, source_labels)
    blind = _logits(never_neutral, rng, separation=9.0)
    bbse = LabelShiftSpec(estimator="bbse", calibration="none")  # (a fitted bias could make neutral appear)
    chosen = estimate_prior(bbse, NAMES, blind, source_labels, corpus)
    assert "the classifier does not predict every class" in chosen.problems[0] and set(chosen.cross_check) == {"em"}
    cross = estimate_prior(LabelShiftSpec(estimator="em", calibration="none"), NAMES, blind, source_labels, corpus)
    assert "bbse" not in cross.cross_check and not any("bbse" in problem for problem in cross.problems)


def test_estimation_inputs_are_checked_before_training() -> None:
    spec = LabelShiftSpec(min_corpus_texts=100)
    with pytest.raises(UserError, match="no example of class neutral"):
        check_estimable(spec, NAMES, np.array([0, 1, 0, 1]), 500)
    with pytest.raises(UserError, match=r"50 texts are too few .*min_corpus_texts is 100"):
        check_estimable(spec, NAMES, np.array([0, 1, 2]), 50)
    check_estimable(spec, NAMES, np.array([0, 1, 2]), 100)


def test_logit_adjustment_is_the_bayes_correction() -> None:
    """softmax(logits * scale + bias) = calibrated posterior x target prior / source prior, renormalised."""
    rng = np.random.default_rng(4)
    source_labels = _labels([0.4, 0.4, 0.2], 2000, rng)
    source, corpus = _logits(source_labels, rng), _logits(_labels([0.1, 0.6, 0.3], 2000, rng), rng)
    estimate = estimate_prior(LabelShiftSpec(), NAMES, source, source_labels, corpus)
    scale, bias = estimate.logit_adjustment()
    z = corpus * scale + np.asarray(bias)
    adjusted = np.exp(z - z.max(axis=1, keepdims=True))
    adjusted /= adjusted.sum(axis=1, keepdims=True)
    bayes = estimate.calibration.probabilities(corpus) * estimate.prior / estimate.source_prior
    assert np.allclose(adjusted, bayes / bayes.sum(axis=1, keepdims=True), atol=1e-9)
    # EM's fixed point: the corrected posteriors average to the estimated prior.
    assert np.allclose(adjusted.mean(axis=0), estimate.prior, atol=1e-4)


# ---- pseudo-label quotas ----------------------------------------------------------------------------------------


def test_pseudo_labels_follow_the_given_proportions() -> None:
    assert quotas(10, np.array([0.64, 0.36])) == [6, 4]
    assert quotas(7, np.array([1 / 3, 1 / 3, 1 / 3])) == [3, 2, 2]
    assert sum(quotas(101, np.array([0.2, 0.5, 0.3]))) == 101
    rng = np.random.default_rng(5)
    positive = rng.uniform(size=200)
    probabilities = np.stack([1 - positive, positive], axis=1)
    chosen = select_pseudo_labels(probabilities, 100, shares=np.array([0.3, 0.7]), min_confidence=0.0)
    labels = np.array([p.label for p in chosen])
    assert len(chosen) == 100 and (labels == 1).sum() == 70
    # Each class takes its most probable texts: the 70 most positive, the 30 most negative.
    assert {p.index for p in chosen if p.label == 1} == set(np.argsort(-positive)[:70].tolist())
    assert {p.index for p in chosen if p.label == 0} == set(np.argsort(positive)[:30].tolist())


# ---- the correction in a model folder ----------------------------------------------------------------------------

TEXTS = ["great movie 3", "awful acting and a dull, lifeless plot", "a delight", "hated it 7"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("prior")
    write_sentiment_csv(root / "train.csv")
    write_sentiment_csv(root / "eval.csv", copies=3)
    recipe = write_recipe(
        root / "full",
        tiny_models["bert"],
        root / "train.csv",
        data={"eval": str(root / "eval.csv")},
        train={"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 5, "seed": 0},
    )
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    return root / "full" / "run"


def _with_prior(run: Path, tmp_path: Path, scale: float, bias: list[float], labels: Any = None) -> Path:
    copy = tmp_path / "corrected"
    shutil.copytree(run, copy)
    record = {"labels": labels or ["negative", "positive"], "logit_scale": scale, "logit_bias": bias}
    (copy / "label_prior.json").write_text(json.dumps(record), encoding="utf-8")
    return copy


def _raw_logits(folder: Path) -> torch.Tensor:
    predictor: Any = open_predictor(folder, runtime=Runtime.choose("cpu", "fp32"))  # as the ONNX graph computes
    return torch.cat(list(predictor.logits(TEXTS)))


def test_predict_and_evaluate_apply_the_recorded_prior(trained: Path, tmp_path: Path) -> None:
    raw = _raw_logits(trained)
    corrected = _with_prior(trained, tmp_path, 0.5, [-3.0, 3.0])
    assert torch.allclose(_raw_logits(corrected), raw * 0.5 + torch.tensor([-3.0, 3.0]), atol=1e-6)
    rows = list(open_predictor(corrected).predict(TEXTS))
    expected = torch.softmax(raw * 0.5 + torch.tensor([-3.0, 3.0]), dim=-1)
    assert [row["probabilities"]["positive"] for row in rows] == pytest.approx(expected[:, 1].tolist(), abs=1e-5)
    assert {row["label"] for row in rows} == {"positive"}  # a bias of 6 in favour of positive outweighs the model
    data = trained.parent.parent / "eval.csv"
    plain = json.loads(invoke("evaluate", trained, "--data", data).stdout)["metrics"]
    leaning = json.loads(invoke("evaluate", corrected, "--data", data).stdout)["metrics"]
    assert plain["recall_positive"] < leaning["recall_positive"] == 1.0 and leaning["recall_negative"] == 0.0


def test_export_carries_the_prior_and_push_replaces_a_stale_one(trained: Path, tmp_path: Path) -> None:
    corrected = _with_prior(trained, tmp_path, 1.0, [0.4, -0.4])
    out = tmp_path / "export"
    assert invoke("export", corrected, "--out", out).exit_code == 0
    assert (out / "label_prior.json").read_bytes() == (corrected / "label_prior.json").read_bytes()
    assert torch.allclose(_raw_logits(out), _raw_logits(corrected), atol=1e-6)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "label_prior.json" in card and "softmax(logits * logit_scale + logit_bias)" in card
    assert "label_prior.json" in MODEL_FILE_PATTERNS  # a push of a plain model deletes a corrected one's prior


def test_onnx_export_bakes_the_prior_into_the_graph(trained: Path, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    corrected = _with_prior(trained, tmp_path, 2.0, [1.5, -1.5])
    out = tmp_path / "onnx"
    result = invoke("export", corrected, "--onnx", "--out", out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))["onnx"]
    assert record["label_prior"] == "label_prior.json applied in the graph"
    from transformers import AutoTokenizer

    inputs = AutoTokenizer.from_pretrained(out)(TEXTS, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (found,) = session.run(["logits"], {name: inputs[name] for name in record["inputs"]})
    assert np.abs(found - _raw_logits(corrected).numpy()).max() < 1e-4


def test_a_damaged_or_foreign_prior_file_is_a_one_line_error(trained: Path, tmp_path: Path) -> None:
    foreign = _with_prior(trained, tmp_path, 1.0, [0.0, 0.0], labels=["neg", "pos"])
    user_error(invoke("predict", foreign, "fine"), "label_prior.json", "belongs to another model")
    (foreign / "label_prior.json").write_text('{"labels": ["negative", "positive"], "logit_scale": 0}', "utf-8")
    user_error(invoke("predict", foreign, "fine"), "label_prior.json", "damaged")
    (foreign / "label_prior.json").write_text("{not json", "utf-8")
    user_error(invoke("evaluate", foreign, "--data", trained.parent.parent / "eval.csv"), "damaged")
