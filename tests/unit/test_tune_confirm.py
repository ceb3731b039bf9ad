"""A search that finds, or says it found nothing: trials scored on several seeds, a trial that has not learned (or
diverged) never crowned, the stability guard, the paired verdict on fresh seeds, and the settings that only the
search uses. Tiny BERT; the statistics checked against scipy."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest
from scipy import stats
from transformers import TrainerControl

from nlp_transfer.studies.tune.confirm import compare
from nlp_transfer.studies.tune.trial import (
    SEED_STRIDE,
    ReportToTrial,
    StabilityGuard,
    crowned,
    learned,
    seed_run,
)
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv


class Step:
    global_step = 0


def guard_after(losses: list[float]) -> tuple[StabilityGuard, TrainerControl]:
    guard, control, state = StabilityGuard(), TrainerControl(), Step()
    guard.on_train_begin(None, state, control)
    for step, loss in enumerate(losses, start=1):
        state.global_step = step * 10
        guard.on_log(None, state, control, logs={"loss": loss, "learning_rate": 1e-3})
        guard.on_log(None, state, control, logs={"eval_loss": 9.0})  # evaluations are not the training loss
    return guard, control


@pytest.mark.parametrize(
    ("losses", "diverged_at"),
    [
        ([0.69, 0.50, 0.35, 0.30, 0.68, 0.70], 60),  # learned, then back at chance: stopped at the second such log
        ([0.69, 0.50, 0.35, 0.30, 0.68, 0.40], None),  # one bad log, then down again: noise, not divergence
        ([0.69, 0.70, 0.69, 0.68, 0.70], None),  # never fell: has not learned (the baseline says so), not diverged
        ([0.69, 0.60, 0.45, 0.40, 0.38], None),  # a normal run
    ],
)
def test_the_stability_guard_stops_a_run_whose_loss_rises_back_to_chance(
    losses: list[float], diverged_at: int | None
) -> None:
    guard, control = guard_after(losses)
    assert guard.diverged_at == diverged_at
    assert control.should_training_stop == (diverged_at is not None)


def test_a_diverged_seed_is_scored_at_the_baseline_and_learning_means_beating_it_by_the_margin() -> None:
    metrics = {
        "eval": {"eval_accuracy": 0.84},  # the kept checkpoint, from before the loss went back up
        "train": {"train_wall_seconds": 3.0},
        "diagnostics": {"baseline": {"name": "the majority class", "accuracy": 0.509}},
    }
    diverged, _ = guard_after([0.69, 0.5, 0.3, 0.7, 0.7])
    run = seed_run(7, metrics, "accuracy", diverged)
    assert (run.value, run.measured, run.baseline, run.diverged_at) == (0.509, 0.84, 0.509, 50)
    steady = seed_run(7, metrics, "accuracy", StabilityGuard())
    assert steady.value == 0.84 and steady.diverged_at is None
    assert learned(0.53, 0.509, "accuracy") and not learned(0.515, 0.509, "accuracy")  # margin 0.01
    assert learned(0.2, 0.5, "loss") and not learned(0.5, 0.5, "loss")  # lower is better
    assert learned(0.1, None, "accuracy")  # no baseline for the metric: nothing to fall short of


def test_pruning_sees_the_mean_of_the_seeds_run_so_far_at_the_same_evaluation() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    first = ReportToTrial(trial, "eval_accuracy", 0, [])
    first.on_train_begin(None, None, None)
    for value in (0.6, 0.8):
        first.on_evaluate(None, None, None, metrics={"eval_accuracy": value})
    second = ReportToTrial(trial, "eval_accuracy", 1, [first.values])
    second.on_train_begin(None, None, None)
    for value in (0.7, 0.9, 1.0):  # a third evaluation: the first seed stands at its last (0.8)
        second.on_evaluate(None, None, None, metrics={"eval_accuracy": value})
    reported = study.trials[-1].intermediate_values
    expected = {0: 0.6, 1: 0.8, SEED_STRIDE: 0.65, SEED_STRIDE + 1: 0.85, SEED_STRIDE + 2: 0.9}
    assert reported == pytest.approx(expected)


def test_only_a_trial_that_learned_and_never_diverged_is_crowned() -> None:
    study = optuna.create_study(direction="maximize")

    def add(value: float, **attrs: Any) -> None:
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}, user_attrs=attrs))

    add(0.90, learned=False, diverged=[])  # the highest value, at the baseline of a skewed eval set
    add(0.88, learned=True, diverged=[43])  # one seed went back to chance
    assert crowned(study) is None
    add(0.70, learned=True, diverged=[])
    add(0.70, learned=True, diverged=[])  # a tie: the first found stays best
    assert crowned(study).number == 2


def comparison(found: list[float], recipe: list[float], diverged: int = 0) -> dict[str, Any]:
    runs = lambda values, bad: [{"value": v, "diverged": i < bad} for i, v in enumerate(values)]  # noqa: E731
    return compare("accuracy", [1042, 1043, 1044], runs(found, diverged), runs(recipe, 0)).summary()


def test_the_verdict_says_better_by_x_plus_minus_y_only_when_the_paired_test_says_so() -> None:
    found, recipe = [0.850, 0.862, 0.871], [0.801, 0.805, 0.812]
    summary = comparison(found, recipe)
    gains = [100 * (f - r) for f, r in zip(found, recipe, strict=True)]
    assert summary["gain_mean"] == pytest.approx(statistics.fmean(gains))
    assert summary["gain_std"] == pytest.approx(statistics.stdev(gains))
    assert summary["p_value"] == pytest.approx(stats.ttest_rel(found, recipe, alternative="greater").pvalue)
    assert summary["better"] and summary["verdict"].startswith(
        f"found settings are better by {statistics.fmean(gains):.2f} ± {statistics.stdev(gains):.2f} points"
    )
    assert summary["found_mean"] == pytest.approx(statistics.fmean(found))

    noisy = comparison([0.830, 0.801, 0.842], [0.812, 0.818, 0.809])  # higher on average, but within the noise
    assert noisy["gain_mean"] > 0 and noisy["p_value"] > 0.05 and not noisy["better"]
    assert noisy["verdict"].startswith("no setting found is reliably better than the recipe's: found - recipe = +")

    worse = comparison([0.70, 0.71, 0.69], [0.80, 0.81, 0.80])
    assert not worse["better"] and "found - recipe = -10.33" in worse["verdict"]

    unstable = comparison([0.85, 0.90, 0.91], [0.80, 0.81, 0.80], diverged=1)  # higher, but one seed diverged
    assert unstable["p_value"] < 0.05 and not unstable["better"] and "diverged on 1" in unstable["verdict"]


def test_a_search_where_no_trial_learns_crowns_none_and_writes_no_best_recipe(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """As a new user met it: every trial at exactly the majority baseline once said 'best: trial 0'."""
    space = {"train.learning_rate": [1e-4, 2e-4]}  # 1 epoch on 86 rows: the tiny model learns nothing
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], sentiment_csv, tune={"trials": 2, "space": space, "confirm": 2}
    )
    out = tmp_path / "tune"
    result = invoke("tune", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "trials.json").read_text())
    assert record["best"] is None and record["confirmation"] is None
    assert [row["state"] for row in record["trials"]] == ["not learned", "not learned"]
    for row in record["trials"]:
        assert row["value"] <= row["baseline"] + 0.01  # what "not learned" means
    assert "no trial learned the task" in record["no_best"]
    assert "has not learned the task" in result.output and "[confirm]" not in result.output  # nothing to confirm
    assert not (out / "best_recipe.yaml").exists() and not any((out / "trials").iterdir())
    assert "- best: none: no trial learned the task" in (out / "trials.md").read_text()


@pytest.mark.heavy
def test_a_trial_is_scored_by_the_mean_of_its_seeds_and_keeps_one_run_folder(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    data = write_sentiment_csv(tmp_path / "learnable.csv", copies=20)
    space = {"train.epochs": [3]}
    tune = {"trials": 1, "space": space, "seeds": 2, "confirm": 0, "pruner": "none"}
    recipe = write_recipe(tmp_path, tiny_models["bert"], data, train={"learning_rate": 3e-3}, tune=tune)
    out = tmp_path / "tune"
    result = invoke("tune", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "trials.json").read_text())
    (row,) = record["trials"]
    assert row["state"] == "complete" and len(row["seed_values"]) == 2
    assert row["value"] == pytest.approx(statistics.fmean(row["seed_values"]))
    assert row["spread"] == pytest.approx(statistics.stdev(row["seed_values"]))
    assert row["evaluations"] == 6  # 3 per seed, each reported to the pruner
    # The first seed (train.seed) is the trial's run folder; the second seed's run only gave its score.
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["trial-0"]
    metrics = json.loads((out / "trials" / "trial-0" / "metrics.json").read_text())
    assert metrics["eval"]["eval_accuracy"] == row["seed_values"][0]
    assert "over 2 seeds" in result.output
    assert "confirmation: none (tune.confirm: 0), so no best_recipe.yaml" in (out / "trials.md").read_text()
    assert not (out / "best_recipe.yaml").exists()


@pytest.mark.parametrize(
    ("tune", "fragments"),
    [
        ({"confirm": 1}, ["tune.confirm: one fresh seed cannot tell a difference from noise"]),
        ({"seeds": 0}, ["tune.seeds", "greater than or equal to 1"]),
        ({"search_only": {"data.max_train_sample": 100}}, ["tune.search_only.data.max_train_sample", "did you mean"]),
        ({"search_only": {"train.epochs": 1}}, ["tune.search_only.train.epochs: also searched in tune.space"]),
        ({"search_only": {"train.epochs": 0}, "space": {"train.batch_size": [4]}}, ["tune.search_only", "epochs"]),
    ],
)
def test_bad_seeds_confirm_and_search_only_settings_are_one_line_errors(
    tune: dict[str, Any], fragments: list[str], sentiment_csv: Path, tmp_path: Path
) -> None:
    settings = {"space": {"train.epochs": [1, 2]}, **tune}
    recipe = write_recipe(tmp_path, "no-such-model", sentiment_csv, tune=settings)
    user_error(invoke("tune", recipe, "--output-dir", tmp_path / "tune"), *fragments)
    assert not (tmp_path / "tune").exists()


def test_the_verdict_waits_for_every_confirmation_run_and_the_recipes_own_settings_need_none(
    sentiment_csv: Path, tmp_path: Path
) -> None:
    """Each confirmation run is recorded on the study as it finishes (a stopped session goes on from there); the
    verdict, and so best_recipe.yaml, exists only once both sides have every fresh seed."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.tune.confirm import confirmation, run_key
    from nlp_transfer.studies.tune.space import SearchSpace

    tune = {"space": {"train.learning_rate": [1e-3, 5e-3]}, "confirm": 2}  # the recipe's own rate: 1e-3
    space = SearchSpace(load_recipe(write_recipe(tmp_path, "m", sentiment_csv, tune=tune)))
    study = optuna.create_study(direction="maximize")
    choices = optuna.distributions.CategoricalDistribution([1e-3, 5e-3])
    for rate in (5e-3, 1e-3):
        trial = optuna.trial.create_trial(
            value=0.9, params={"train.learning_rate": rate}, distributions={"train.learning_rate": choices}
        )
        study.add_trial(trial)
    found, own = study.trials
    assert confirmation(study, space, "accuracy", found) is None  # nothing run yet
    for seed, (mine, theirs) in zip([1000, 1001], [(0.86, 0.80), (0.88, 0.81)], strict=True):
        assert confirmation(study, space, "accuracy", found) is None  # not every seed yet
        study.set_user_attr(run_key("found", seed, found.number), {"value": mine, "diverged": False})
        study.set_user_attr(run_key("recipe", seed, None), {"value": theirs, "diverged": False})
    verdict = confirmation(study, space, "accuracy", found)
    assert verdict is not None and verdict["seeds"] == [1000, 1001] and verdict["trial"] == found.number
    assert verdict["found"] == [0.86, 0.88] and verdict["recipe"] == [0.80, 0.81]
    assert verdict["gain_mean"] == pytest.approx(6.5)
    same = confirmation(study, space, "accuracy", own)  # the best trial drew the recipe's own settings
    assert same is not None and not same["better"] and "the best trial used the recipe's own" in same["verdict"]
