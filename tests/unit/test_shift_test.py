"""The label-shift test (studies/adapt/shift_test.py): texts that differ only in their label shares pass, texts
that read differently are rejected, and the bound follows the source's rarest class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp_transfer.studies.adapt.shift_test import MIN_TEXTS, SLACK, label_shift_bound, label_shift_test

FILLER = ["the", "a", "it", "was", "this", "film", "movie", "plot", "very", "quite", "really", "and", "but", "with"]
OTHER = ["order", "shipping", "seller", "delivered", "package", "refund", "warranty", "cable", "battery", "screen"]
SENTIMENT = {0: ["terrible", "awful", "boring", "dull"], 1: ["excellent", "wonderful", "great", "moving"]}


def _texts(n: int, positive_share: float, filler: list[str], seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=n) < positive_share).astype(int)
    texts = []
    for label in labels:
        words = list(rng.choice(filler, size=8))
        words.insert(int(rng.integers(9)), str(rng.choice(SENTIMENT[int(label)])))
        texts.append(" ".join(words))
    return texts, labels


@pytest.mark.parametrize("positive_share", [0.5, 0.8, 0.15])
def test_only_the_label_shares_moving_passes(positive_share: float) -> None:
    source, labels = _texts(400, 0.5, FILLER, seed=0)
    target, _ = _texts(400, positive_share, FILLER, seed=1)
    found = label_shift_test(source, labels, target, 2, seed=0)
    assert found is not None and not found.rejects_label_shift
    # The sentiment words are all a classifier could use: at most 1/2 + TV(priors) / 2, plus noise.
    assert found.accuracy <= 0.5 + abs(positive_share - 0.5) / 2 + 0.06
    assert "within what label shift alone allows" in found.finding()


def test_texts_that_read_differently_are_rejected() -> None:
    source, labels = _texts(400, 0.5, FILLER, seed=0)
    target, _ = _texts(300, 0.5, OTHER, seed=1)
    found = label_shift_test(source, labels, target, 2, seed=0)
    assert found is not None and found.rejects_label_shift and found.accuracy > 0.95
    assert found.texts_per_domain == 300 and found.record()["rejects_label_shift"]
    assert f"more than label shift alone allows ({100 * found.bound:.0f}%)" in found.finding()


def test_too_few_texts_are_not_tested() -> None:
    source, labels = _texts(400, 0.5, FILLER, seed=0)
    target, _ = _texts(MIN_TEXTS - 1, 0.5, OTHER, seed=1)
    assert label_shift_test(source, labels, target, 2, seed=0) is None
    assert label_shift_test(["same words"] * 60, labels[:60], ["other text"] * 60, 2, seed=0) is not None


def test_the_bound_allows_every_target_prior_of_the_source_classes() -> None:
    """All the target's mass on the source's rarest class is the largest label shift: TV = 1 - its share."""
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    assert label_shift_bound(labels, 3) == pytest.approx(0.5 + 0.8 / 2 + SLACK)
    assert label_shift_bound(np.array([0, 1] * 10), 2) == pytest.approx(0.75 + SLACK)
    # A class the source eval split lacks would allow any accuracy (check_estimable refuses that split earlier).
    assert label_shift_bound(np.array([0, 0, 1]), 3) == pytest.approx(1.0 + SLACK)


def _fake_adaptation(tmp_path: Path, policy: str, rejects: bool) -> Any:
    """What estimate_for reads: a run folder's saved logits, the source eval labels, the spec, the test's result."""
    from types import SimpleNamespace

    from nlp_transfer.recipe import LabelShiftSpec
    from nlp_transfer.studies.adapt.shift_test import ShiftTest

    rng = np.random.default_rng(0)
    labels = np.arange(400) % 2
    source = np.stack([np.zeros(400), np.where(labels == 1, 3.0, -3.0) + rng.normal(size=400)], axis=1)
    corpus = np.stack([np.zeros(200), np.full(200, -12.0)], axis=1)  # every text far on the negative side
    np.save(tmp_path / "source_eval_logits.npy", source)
    np.save(tmp_path / "corpus_logits.npy", corpus)
    (tmp_path / "stage_labels.json").write_text('["negative", "positive"]', encoding="utf-8")
    spec = SimpleNamespace(label_shift=LabelShiftSpec(shift_test=policy, min_corpus_texts=10))
    test = ShiftTest(0.97 if rejects else 0.5, 0.8, 200)
    return SimpleNamespace(source=SimpleNamespace(eval_labels=labels), spec=spec, shift_test=test)


def test_an_unusable_estimate_the_test_keeps_from_use_is_no_error(tmp_path: Path) -> None:
    """A degenerate estimate on a target the test rejects: not used anyway (require), so no error; where it would be
    used (report, or a target the test passes) it is the one-line error it always was."""
    from nlp_transfer.core.errors import UserError
    from nlp_transfer.studies.adapt.signals import estimate_for, trusted

    adaptation = _fake_adaptation(tmp_path, "require", rejects=True)
    estimate = estimate_for(adaptation, tmp_path, required=True)
    assert estimate is not None and "degenerate" in estimate.problems[0]
    assert estimate.doubt is not None and not trusted(adaptation, estimate)
    for policy, rejects in (("report", True), ("require", False)):
        with pytest.raises(UserError, match="cannot be used: the estimated prior is degenerate"):
            estimate_for(_fake_adaptation(tmp_path, policy, rejects), tmp_path, required=True)
