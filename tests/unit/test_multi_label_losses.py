"""Multi-label losses (task.loss: bce, focal, asymmetric) against hand-computed values, their schema's one-line
errors, threshold shrinkage towards the global threshold on a synthetic case where per-label tuning over-fits, and a
tiny run that trains with them, keeps the checkpoint best at its tuned thresholds and records how they were reached."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from nlp_transfer.recipe import MultiLabelTask
from nlp_transfer.recipe.loss_specs import AsymmetricLoss, BinaryCrossEntropyLoss, FocalLoss
from nlp_transfer.tasks.multi_label_losses import asymmetric, binary_cross_entropy, focal, loss_for
from nlp_transfer.tasks.thresholds import Decisions, tune, tuned
from tests.conftest import invoke, user_error, write_recipe
from tests.unit.labels_data import write_emotions

# Two texts, two labels: logits and 0/1 labels (B=2, L=2), so every term is worked out below by hand.
LOGITS = torch.tensor([[0.0, 2.0], [-4.0, 1.0]])
LABELS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _by_hand(positive: Any, negative: Any, weights: tuple[float, float] = (1.0, 1.0)) -> float:
    """The mean over the four (text, label) terms, each from its own probability p."""
    terms = []
    for row_logits, row_labels in zip(LOGITS.tolist(), LABELS.tolist(), strict=True):
        for label, (x, y) in enumerate(zip(row_logits, row_labels, strict=True)):
            p = _sigmoid(x)
            terms.append(weights[label] * positive(p) if y == 1 else negative(p))
    return sum(terms) / len(terms)


def test_binary_cross_entropy_is_the_hand_computed_mean_with_positive_weights() -> None:
    expected = _by_hand(lambda p: -math.log(p), lambda p: -math.log(1 - p), weights=(3.0, 0.5))
    # -3 log .5, -log(1 - s(2)), -log(1 - s(-4)), -.5 log s(1): 2.0794 + 2.1269 + 0.0181 + 0.1566
    assert expected == pytest.approx((2.0794 + 2.1269 + 0.0181 + 0.1566) / 4, abs=1e-4)
    assert binary_cross_entropy([3.0, 0.5])(LOGITS, LABELS).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_focal_loss_scales_each_term_by_its_focusing_factor(alpha: float | None) -> None:
    a, not_a = (alpha, 1 - alpha) if alpha is not None else (1.0, 1.0)
    expected = _by_hand(
        lambda p: -a * (1 - p) ** 2 * math.log(p), lambda p: -not_a * p**2 * math.log(1 - p), weights=(2.0, 1.0)
    )
    found = focal(2.0, alpha, [2.0, 1.0])(LOGITS, LABELS).item()
    assert found == pytest.approx(expected, rel=1e-6)
    if alpha is None:  # by hand: -2 (.5)^2 log .5 = 0.3466; s(2)^2 * 2.1269 = 1.6501; ...
        assert found == pytest.approx((0.3466 + 1.6501 + 0.0181 * 0.01799**2 + 0.2689**2 * 0.3133) / 4, abs=1e-3)


def test_asymmetric_loss_focuses_negatives_and_drops_those_below_the_clip() -> None:
    clip = 0.05

    def negative(p: float) -> float:
        q = max(p - clip, 0.0)
        return -(q**4) * math.log(1 - q)

    expected = _by_hand(lambda p: -((1 - p) ** 1) * math.log(p), negative)
    assert negative(_sigmoid(-4.0)) == 0.0  # p = 0.018 < clip: this negative costs nothing
    assert asymmetric(4.0, 1.0, clip, None)(LOGITS, LABELS).item() == pytest.approx(expected, rel=1e-6)


def test_without_focusing_focal_and_asymmetric_are_binary_cross_entropy() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=generator) * 4
    labels = (torch.rand(16, 5, generator=generator) < 0.3).float()
    weights = [1.0, 5.0, 0.5, 2.0, 10.0]
    plain = binary_cross_entropy(weights)(logits, labels)
    assert focal(0.0, None, weights)(logits, labels).item() == pytest.approx(plain.item(), rel=1e-6)
    assert asymmetric(0.0, 0.0, 0.0, weights)(logits, labels).item() == pytest.approx(plain.item(), rel=1e-6)


@pytest.mark.parametrize("loss", [focal(0.5, 0.25, None), asymmetric(0.5, 0.0, 0.05, None), asymmetric(4, 1, 0, None)])
def test_saturated_logits_give_finite_losses_and_gradients(loss: Any) -> None:
    logits = torch.tensor([[60.0, -60.0, 0.0], [-60.0, 60.0, 3.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    value = loss(logits, labels)
    value.backward()
    assert torch.isfinite(value) and logits.grad is not None and torch.isfinite(logits.grad).all()


def test_the_recipe_picks_the_loss_and_its_parameters() -> None:
    assert isinstance(MultiLabelTask(name="multi_label").loss, BinaryCrossEntropyLoss)  # today's, the default
    task = MultiLabelTask.model_validate({"name": "multi_label", "loss": "asymmetric"})  # a bare name: defaults
    assert task.loss == AsymmetricLoss(name="asymmetric", gamma_neg=4.0, gamma_pos=0.0, clip=0.05)
    task = MultiLabelTask.model_validate({"name": "multi_label", "loss": {"name": "focal", "gamma": 1.5}})
    assert task.loss == FocalLoss(name="focal", gamma=1.5, alpha=None)
    assert loss_for(task.loss, None)(LOGITS, LABELS).item() == pytest.approx(
        focal(1.5, None, None)(LOGITS, LABELS).item()
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("task.loss=focl", "task.loss.name: unknown task.loss 'focl' (did you mean 'focal'?)"),
        ("task.loss={name: focal, gamma: -1}", "task.loss.gamma: Input should be greater than or equal to 0"),
        ("task.loss={name: focal, alpha: 1.5}", "task.loss.alpha: Input should be less than 1"),
        ("task.loss={name: focal, gama: 2}", "task.loss.gama: unknown field 'gama' (did you mean 'gamma'?)"),
        ("task.loss={name: asymmetric, clip: 0.6}", "task.loss.clip: Input should be less than 0.5"),
        ("task.loss={name: asymmetric, gamma_pos: 5}", "task.loss.gamma_pos 5 is above gamma_neg 4"),
        ("task.threshold_shrinkage=-1", "task.threshold_shrinkage: Input should be greater than or equal to 0"),
        ("task={name: multi_label, thresholds: global, threshold_shrinkage: 5}", "set task.thresholds: per_label"),
    ],
)
def test_bad_loss_and_shrinkage_settings_are_one_line_errors(tmp_path: Path, override: str, fragment: str) -> None:
    recipe = write_recipe(tmp_path, "model", "train.jsonl", task={"name": "multi_label", "label": "labels"})
    line = user_error(invoke("show", recipe, "-o", override), fragment)
    assert str(recipe) in line


# ---- thresholds shrunk towards the global one ---------------------------------------------------------------


def _scored(rng: np.random.Generator, rows: int, prevalence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every label's positives score about 0.55 and its negatives about 0.2, whatever its prevalence."""
    gold = (rng.random((rows, len(prevalence))) < prevalence).astype(int)
    scores = np.where(gold == 1, rng.normal(0.55, 0.2, gold.shape), rng.normal(0.2, 0.12, gold.shape))
    return np.clip(scores, 0, 1), gold


def test_shrinkage_keeps_rare_labels_from_over_fitting_their_few_eval_positives() -> None:
    """Two common labels and six rare ones (2%: 4 to 9 positives in a 300-text eval split) scored alike: each rare
    label's own best threshold fits its handful of eval texts, and on 30,000 test texts shrinking towards the global
    threshold beats both each label's own and the one global threshold."""
    rng = np.random.default_rng(0)
    prevalence = np.array([0.3, 0.3, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02])
    (dev, dev_gold), (test, test_gold) = _scored(rng, 300, prevalence), _scored(rng, 30_000, prevalence)

    def test_f1(thresholds: np.ndarray) -> float:
        return float(f1_score(test_gold, test >= thresholds, average="macro", zero_division=0.0))

    own, shrunk = tune(dev, dev_gold, "per_label", 0.5), tune(dev, dev_gold, "per_label", 0.5, shrinkage=10)
    overall = tune(dev, dev_gold, "global", 0.5)
    assert test_f1(shrunk) > test_f1(own) + 0.02 and test_f1(shrunk) > test_f1(overall) + 0.01
    found = tuned(dev, dev_gold, "per_label", 0.5, shrinkage=10)
    moved = np.abs(found["final"] - own) / np.maximum(np.abs(overall - own), 1e-9)
    positives = dev_gold.sum(axis=0)
    assert found["global"] == overall[0] and (positives == found["positives"]).all()
    assert np.allclose(moved[own != overall], (10 / (positives + 10))[own != overall])  # rarer labels move more
    assert tune(dev, dev_gold, "per_label", 0.5, shrinkage=1e9).tolist() == pytest.approx(overall.tolist(), abs=1e-6)


def test_a_label_without_eval_positives_takes_the_global_threshold_when_shrinking() -> None:
    rng = np.random.default_rng(1)
    dev, gold = _scored(rng, 200, np.array([0.3, 0.3, 0.0]))
    assert gold[:, 2].sum() == 0
    assert tune(dev, gold, "per_label", 0.5)[2] == 0.5  # nothing to tune on: the fixed threshold, as before
    assert tune(dev, gold, "per_label", 0.5, shrinkage=5)[2] == tune(dev, gold, "global", 0.5)[0]

    decisions = Decisions(["a", "b", "c"], "per_label", 0.5, shrinkage=5)
    final = decisions.thresholds(dev, gold)
    record = json.loads(json.dumps(decisions.settle()))  # what thresholds.json holds
    assert record["thresholds"] == {n: pytest.approx(t, abs=1e-4) for n, t in zip("abc", final, strict=True)}
    assert record["shrinkage"] == 5 and record["own_thresholds"]["c"] is None
    assert record["eval_positives"] == {n: int(v) for n, v in zip("abc", gold.sum(axis=0), strict=True)}


# ---- a run trained with them --------------------------------------------------------------------------------


def test_a_run_trains_with_its_loss_keeps_the_best_tuned_checkpoint_and_records_the_shrinkage(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    train, evaluation = write_emotions(tmp_path / "data")
    task = {"name": "multi_label", "label": "labels", "text": "text", "max_length": 32, "threshold_shrinkage": 20}
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        train,
        task=task | {"loss": {"name": "asymmetric", "gamma_neg": 2, "gamma_pos": 0, "clip": 0.05}},
        data={"eval": str(evaluation), "test": str(evaluation)},
        train={"epochs": 3, "batch_size": 16, "learning_rate": 2e-3, "seed": 0, "precision": "fp32"},
    )
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    record = json.loads((run / "thresholds.json").read_text(encoding="utf-8"))
    assert record["shrinkage"] == 20 and set(record["eval_positives"]) == {"joy", "anger", "fear"}
    for name, final in record["thresholds"].items():  # between the label's own and the global threshold
        own, overall = record["own_thresholds"][name], record["global_threshold"]
        assert min(own, overall) - 1e-4 <= final <= max(own, overall) + 1e-4

    assert "pulled towards the global" in (run / "README.md").read_text(encoding="utf-8")  # the card says so

    # The checkpoint kept is the one whose macro-F1 at its own tuned (shrunk) thresholds is best, and the final
    # evaluation (which settles the thresholds) scores that checkpoint again.
    evaluations = [
        e for e in json.loads((run / "trainer_state.json").read_text())["log_history"] if "eval_macro_f1" in e
    ]
    assert len(evaluations) == 3
    best = max(evaluations, key=lambda e: e["eval_macro_f1"])
    assert metrics["eval"]["eval_macro_f1"] == pytest.approx(best["eval_macro_f1"])
    assert metrics["diagnostics"]["kept"]["step"] == best["step"]

    # evaluate on the eval file: the saved thresholds and the run's own loss (ASL, not binary cross-entropy)
    evaluated = invoke("evaluate", run, "--data", evaluation, "--precision", "fp32")
    assert evaluated.exit_code == 0, evaluated.output
    found = json.loads(evaluated.stdout)["metrics"]
    assert found["macro_f1"] == pytest.approx(metrics["test"]["test_macro_f1"], abs=1e-9)
    assert found["loss"] == pytest.approx(metrics["eval"]["eval_loss"], abs=1e-4)
