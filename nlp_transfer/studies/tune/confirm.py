"""After the search: the best settings and the recipe's own, retrained on tune.confirm fresh seeds at the recipe's own
settings (no tune.search_only), and a verdict on whether the difference is larger than its noise.

The best of N trials is the luckiest of N as much as the best: its search score is biased upwards. Fresh seeds
(train.seed + CONFIRM_SEED_OFFSET + j: a new initialisation, data order and, with data.max_train_samples, a new
training subset) give both sides the same draws, so the comparison is paired: the difference per seed, its mean and
spread, and a one-sided paired t-test. "Better" needs the mean difference in the right direction, p below ALPHA,
and no diverged run of the found settings.

Each finished run is recorded on the study (a user attribute per run), so a stopped session, or another worker
sharing the study, goes on from there; the recipe's own runs serve every best trial the study crowns.
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.recipe import lower_is_better
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.trial import StabilityGuard, seed_run

CONFIRM_SEED_OFFSET = 1000  # far from the trials' seeds (train.seed + 0 .. tune.seeds - 1)
ALPHA = 0.05  # the paired test's threshold for "reliably better"
CONFIRM_DIR = "confirm"


def confirm_seeds(seed: int, count: int) -> list[int]:
    return [seed + CONFIRM_SEED_OFFSET + j for j in range(count)]


def run_key(side: str, seed: int, trial_number: int | None) -> str:
    return f"confirm:recipe:{seed}" if side == "recipe" else f"confirm:trial-{trial_number}:{seed}"


def run_confirmation(study: Any, space: SearchSpace, folder: Path, metric: str, best: Any) -> None:
    """Train what is not recorded yet: for each fresh seed, the recipe's own settings and the best trial's."""
    from nlp_transfer.train.pipeline import RunOptions, run
    from nlp_transfer.train.trainer import TrainingDiverged

    tune = space.loaded.recipe.tune
    assert tune is not None
    sides = {"recipe": {}, "found": space.values(best.params)}
    if sides["found"] == space.own_values():
        return  # the best trial's settings are the recipe's own: nothing to compare
    for seed in confirm_seeds(space.loaded.recipe.train.seed, tune.confirm):
        for side, values in sides.items():
            key = run_key(side, seed, best.number)
            if key in study.user_attrs:
                continue
            run_dir = folder / CONFIRM_DIR / f"{side}-seed-{seed}"
            where = f"tune.confirm ({side} settings, seed {seed})"
            recipe = space.recipe(values, run_dir, where=where, search=False, seed=seed)
            guard = StabilityGuard()
            try:
                metrics = run(recipe, RunOptions(output_dir=run_dir, overwrite=True, callbacks=[guard])).metrics
            except TrainingDiverged as err:  # a non-finite loss: recorded as diverged, the comparison goes on
                found: dict[str, Any] = {"value": None, "diverged": True, "error": str(err)}
            else:
                result = seed_run(seed, metrics, metric, guard)
                found = {"value": result.value, "diverged": result.diverged_at is not None}
            study.set_user_attr(key, found)
            shutil.rmtree(run_dir, ignore_errors=True)
            shown = "diverged" if found["diverged"] else f"eval {metric} {found['value']:.4f}"
            print(f"[confirm] {side} settings, seed {seed}: {shown}", flush=True)


@dataclass(frozen=True)
class Comparison:
    """Paired results on the same fresh seeds; `gain` is positive when the found settings are better."""

    metric: str
    seeds: list[int]
    found: list[float | None]  # None: that run diverged with a non-finite loss
    recipe: list[float | None]
    found_diverged: int
    recipe_diverged: int

    @property
    def scale(self) -> float:
        """Scores between 0 and 1 (accuracy, F1) are shown in points (x 100), others as they are."""
        values = [v for v in (*self.found, *self.recipe) if v is not None]
        bounded = not lower_is_better(self.metric) and all(0.0 <= v <= 1.0 for v in values)
        return 100.0 if bounded else 1.0

    @property
    def unit(self) -> str:
        return "points" if self.scale == 100.0 else f"of eval {self.metric}"

    def gains(self) -> list[float]:
        sign = -1.0 if lower_is_better(self.metric) else 1.0
        pairs = [(f, r) for f, r in zip(self.found, self.recipe, strict=True) if f is not None and r is not None]
        return [sign * (f - r) * self.scale for f, r in pairs]

    def p_value(self) -> float:
        """One-sided paired t-test of 'the found settings are better' (scipy)."""
        from scipy import stats

        gains = self.gains()
        if len(gains) < 2:
            return 1.0
        if statistics.pstdev(gains) == 0.0:  # identical differences: the t statistic is undefined
            return 0.0 if gains[0] > 0 else 1.0
        result = stats.ttest_1samp(gains, 0.0, alternative="greater")
        return float(result.pvalue) if math.isfinite(result.pvalue) else 1.0

    def summary(self) -> dict[str, Any]:
        gains = self.gains()
        mean = statistics.fmean(gains) if gains else 0.0
        spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
        p = self.p_value()
        better = bool(gains) and mean > 0 and p < ALPHA and self.found_diverged == 0
        count = len(self.seeds)
        noise = f"mean ± std of the paired differences over {count} fresh seeds; paired t-test p = {p:.3f}"
        if better:
            verdict = f"found settings are better by {mean:.2f} ± {spread:.2f} {self.unit} ({noise})"
        else:
            verdict = (
                f"no setting found is reliably better than the recipe's: found - recipe = {mean:+.2f} ± {spread:.2f} "
                f"{self.unit} ({noise}; reliably better needs p < {ALPHA}"
                + (
                    f" and no divergence; the found settings diverged on {self.found_diverged})"
                    if self.found_diverged
                    else ")"
                )
            )
        return {
            "verdict": verdict,
            "better": better,
            "seeds": self.seeds,
            "metric": f"eval_{self.metric}",
            "found": self.found,
            "recipe": self.recipe,
            "found_mean": _mean(self.found),
            "recipe_mean": _mean(self.recipe),
            "found_std": _std(self.found),
            "recipe_std": _std(self.recipe),
            "gain_mean": mean,
            "gain_std": spread,
            "unit": self.unit,
            "p_value": p,
            "found_diverged": self.found_diverged,
            "recipe_diverged": self.recipe_diverged,
        }


def compare(metric: str, seeds: list[int], found: list[dict[str, Any]], recipe: list[dict[str, Any]]) -> Comparison:
    """Runs as recorded ({'value', 'diverged'}) -> the comparison."""
    return Comparison(
        metric=metric,
        seeds=seeds,
        found=[run["value"] for run in found],
        recipe=[run["value"] for run in recipe],
        found_diverged=sum(bool(run["diverged"]) for run in found),
        recipe_diverged=sum(bool(run["diverged"]) for run in recipe),
    )


def confirmation(study: Any, space: SearchSpace, metric: str, best: Any) -> dict[str, Any] | None:
    """The verdict for the crowned trial, when its confirmation is complete; None while runs are missing."""
    tune = space.loaded.recipe.tune
    if tune is None or tune.confirm == 0:
        return None
    if space.values(best.params) == space.own_values():
        return {"verdict": "no setting found is better than the recipe's: the best trial used the recipe's own",
                "better": False, "seeds": []}  # fmt: skip
    seeds = confirm_seeds(space.loaded.recipe.train.seed, tune.confirm)
    recorded = study.user_attrs
    keys = {side: [run_key(side, seed, best.number) for seed in seeds] for side in ("found", "recipe")}
    if not all(key in recorded for side_keys in keys.values() for key in side_keys):
        return None
    found, recipe = ([recorded[key] for key in keys[side]] for side in ("found", "recipe"))
    return {"trial": best.number, **compare(metric, seeds, found, recipe).summary()}


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _std(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.stdev(present) if len(present) > 1 else None
