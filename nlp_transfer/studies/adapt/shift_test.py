"""Does label shift hold? A label-free test of the assumption every prior estimate here rests on.

EM and BBSE (label_shift.py) assume the classes look on the target as they did on the source: P(x | y) is the same,
only P(y) moves. Then the target's texts are a re-weighting of the source's, P_t(x) = sum_y pi_t(y) P_s(x | y), and
no classifier can tell a target text from a source text better than the priors' difference allows: with as many
texts of each domain, its accuracy is at most 1/2 + TV(P_s(x), P_t(x)) / 2 <= 1/2 + TV(pi_s, pi_t) / 2
<= 1/2 + (1 - min_y pi_s(y)) / 2 (the last whatever the target prior is: all its mass on the source's rarest class).
A word-level classifier that does better than that bound, cross-validated, proves the texts differ beyond their
labels' shares, and the estimate is then a guess.

Measured (README, Domain adaptation): SST-2 dev against movie-review snippets (rt_polarity) at 20-80% positive, where
EM's estimate lands within 1-6 points of the truth, the classifier scores 49-50% (bound 80%); against Amazon product
reviews and IMDB, where EM misses the true share by 7-52 points, 94-99%. A failed test is not proof the estimate is
wrong, only that nothing supports it; a passed test does not prove label shift either (a word-level classifier is
one witness), so the other label-free warnings stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this many texts per domain a 5-fold cross-validated accuracy is too noisy to reject anything with.
MIN_TEXTS = 50
# Per domain, at most: enough for a stable accuracy (its standard error is about 1 point at 2,000) in seconds.
MAX_TEXTS = 2000
# The cross-validated accuracy's own noise, allowed above the bound before the test rejects.
SLACK = 0.05


@dataclass(frozen=True)
class ShiftTest:
    """A domain classifier's cross-validated accuracy at telling source eval texts from target corpus texts."""

    accuracy: float
    bound: float  # the most label shift alone allows, plus SLACK
    texts_per_domain: int

    @property
    def rejects_label_shift(self) -> bool:
        return self.accuracy > self.bound

    def finding(self) -> str:
        """One sentence: what the test saw."""
        verdict = "more than" if self.rejects_label_shift else "within what"
        return (
            f"a word-level classifier tells the target corpus from the source eval split {100 * self.accuracy:.0f}% "
            f"of the time ({self.texts_per_domain} texts each), {verdict} label shift alone allows "
            f"({100 * self.bound:.0f}%)"
        )

    def record(self) -> dict[str, Any]:
        return {
            "domain_classifier_accuracy": round(self.accuracy, 4),
            "label_shift_bound": round(self.bound, 4),
            "texts_per_domain": self.texts_per_domain,
            "rejects_label_shift": self.rejects_label_shift,
        }


def label_shift_bound(source_labels: np.ndarray, k: int) -> float:
    """1/2 + (1 - the source's smallest class share) / 2, plus SLACK: the bound above, for any target prior."""
    shares = np.bincount(source_labels, minlength=k) / max(len(source_labels), 1)
    return 0.5 + (1.0 - float(shares.min())) / 2 + SLACK


def label_shift_test(
    source_texts: Sequence[str], source_labels: np.ndarray, target_texts: Sequence[str], k: int, *, seed: int
) -> ShiftTest | None:
    """The test on at most MAX_TEXTS texts of each domain, as many of each (a seeded sample); None when either
    domain has fewer than MIN_TEXTS (or no word occurs twice in them). TF-IDF of words and word pairs, logistic
    regression, 5-fold stratified cross-validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    n = min(len(source_texts), len(target_texts), MAX_TEXTS)
    if n < MIN_TEXTS:
        return None
    rng = np.random.default_rng(seed)
    source = [source_texts[i] for i in rng.choice(len(source_texts), n, replace=False)]
    target = [target_texts[i] for i in rng.choice(len(target_texts), n, replace=False)]
    try:
        features = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)).fit_transform(source + target)
    except ValueError:  # no word occurs twice: nothing to tell the domains apart by, or to test with
        return None
    domains = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = cross_val_score(LogisticRegression(max_iter=1000), features, domains, cv=folds)
    return ShiftTest(float(np.mean(scores)), label_shift_bound(source_labels, k), n)
