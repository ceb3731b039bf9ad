"""`nlp-transfer tune` on a tiny BERT: the trials, the outputs (table, best recipe, best run folder, figures),
resuming a study, pruning on the eval metric, and the bad input it refuses before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from nlp_transfer.recipe import load_recipe
from nlp_transfer.studies.tune.worker import ReportToTrial
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SPACE = {
    "train.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "train.epochs": {"low": 1, "high": 2},
    "train.batch_size": [4, 8],
}


def tune_recipe(
    tmp_path: Path, model: Path | str, data: Path, train: dict[str, Any] | None = None, **tune: Any
) -> Path:
    settings = {"trials": 3, "space": SPACE, "startup_trials": 2, "heartbeat_seconds": 2, "confirm": 0, **tune}
    return write_recipe(tmp_path, model, data, tune=settings, train=train or {})


@pytest.mark.heavy
def test_tune_runs_its_trials_confirms_the_best_and_writes_table_verdict_best_recipe_best_run_and_figures(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    data = write_sentiment_csv(tmp_path / "learnable.csv", copies=20)  # 240 rows: the tiny model learns them
    space = {
        "train.learning_rate": {"low": 2e-3, "high": 8e-3, "log": True},
        "train.epochs": {"low": 2, "high": 3},
        "train.batch_size": [4, 8],
    }
    # The trials train on 200 rows (search only); the confirmation and best_recipe.yaml on the recipe's own data.
    recipe = tune_recipe(
        tmp_path, tiny_models["bert"], data, space=space, confirm=2, search_only={"data.max_train_samples": 200}
    )
    out = tmp_path / "tune"
    result = invoke("tune", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output

    record = json.loads((out / "trials.json").read_text())
    assert record["trials_finished"] == 3 and len(record["trials"]) == 3
    assert record["metric"] == "eval_accuracy" and record["direction"] == "maximize"
    assert record["storage"] == f"sqlite:///{(out / 'study.db').resolve()}"
    for row in record["trials"]:
        assert row["state"] in ("complete", "not learned") and 0.0 <= row["value"] <= 1.0
        assert 2e-3 <= row["values"]["train.learning_rate"] <= 8e-3
        assert row["values"]["train.epochs"] in (2, 3) and row["values"]["train.batch_size"] in (4, 8)
        assert row["evaluations"] == row["values"]["train.epochs"]  # one report to the pruner per evaluation
        assert row["seed_values"] == [row["value"]]  # one seed: the score is that run's
    assert len({json.dumps(row["values"], sort_keys=True) for row in record["trials"]}) == 3

    best = record["best"]
    assert best["value"] == max(row["value"] for row in record["trials"] if row["state"] == "complete")
    # Only the best trial's run folder is kept, complete, and its metrics are the value the study recorded.
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial-{best['number']}"]
    best_run = Path(best["run_dir"])
    assert json.loads((best_run / "run_status.json").read_text())["state"] == "complete"
    assert json.loads((best_run / "metrics.json").read_text())["eval"]["eval_accuracy"] == best["value"]
    trial_recipe = yaml.safe_load((best_run / "recipe.resolved.yaml").read_text())
    assert trial_recipe["data"]["max_train_samples"] == 200  # the search-only setting reached the trial

    # The confirmation: both settings on the same 2 fresh seeds, and a verdict in words that agrees with its numbers.
    found = record["confirmation"]
    assert found["trial"] == best["number"] and found["seeds"] == [1000, 1001]
    assert len(found["found"]) == len(found["recipe"]) == 2 and found["found_diverged"] == 0
    gains = [100 * (f - r) for f, r in zip(found["found"], found["recipe"], strict=True)]
    assert found["gain_mean"] == pytest.approx(sum(gains) / 2) and found["unit"] == "points"
    assert found["better"] == (found["gain_mean"] > 0 and found["p_value"] < 0.05)
    expected = "found settings are better by" if found["better"] else "no setting found is reliably better"
    assert found["verdict"].startswith(expected)
    assert not (out / "confirm").exists() or not any((out / "confirm").iterdir())  # its run folders are gone
    assert f"verdict: {found['verdict']}" in result.output

    # best_recipe.yaml is a recipe `run` takes: the best values written in, the verdict beside them, no tune section
    # and none of the search-only settings.
    loaded = load_recipe(out / "best_recipe.yaml")
    assert loaded.recipe.tune is None and loaded.recipe.output.dir is None
    assert loaded.recipe.data.max_train_samples is None
    assert loaded.recipe.train.learning_rate == pytest.approx(best["values"]["train.learning_rate"])
    assert loaded.recipe.train.batch_size == best["values"]["train.batch_size"]
    text = (out / "best_recipe.yaml").read_text()
    assert (
        text.startswith("# The best settings of tune study") and f"# Verdict on fresh seeds: {found['verdict']}" in text
    )

    table = (out / "trials.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| trial |"))
    assert header.startswith("| trial | state | eval_accuracy | ")  # then the searched fields, in the recipe's order
    assert all(f" {path} |" in header for path in space)
    assert f"**{best['value']:.4f}**" in table and table in result.output
    assert f"- verdict: {found['verdict']}" in table
    for figure in ("optimization_history.png", "param_importances.png"):
        assert (out / figure).read_bytes().startswith(PNG_SIGNATURE)


def test_a_resumed_study_keeps_its_trials_and_runs_only_the_missing_ones(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = tune_recipe(tmp_path, tiny_models["bert"], sentiment_csv, trials=2)
    out = tmp_path / "tune"
    assert invoke("tune", recipe, "--output-dir", out).exit_code == 0
    first = json.loads((out / "trials.json").read_text())["trials"]

    again = invoke("tune", recipe, "--output-dir", out)  # the study is complete: nothing runs
    assert again.exit_code == 0 and "[trial" not in again.output
    more = invoke("tune", recipe, "--output-dir", out, "-o", "tune.trials=3")  # a larger budget: one more trial
    assert more.exit_code == 0, more.output
    assert more.output.count("[trial 2] eval accuracy") == 1 and "[trial 0]" not in more.output
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and trials[:2] == first

    changed = invoke("tune", recipe, "--output-dir", out, "-o", "train.weight_decay=0.1")
    user_error(changed, "was made from a different recipe", "--study-name")


def test_a_pruned_trial_stops_at_its_evaluation_counts_as_finished_and_leaves_no_folder(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every trial after the first is pruned at its first evaluation (the pruner's verdict is what we stub).
    def prune_after_first_trial(self: Any, study: Any, trial: Any) -> bool:
        return trial.number > 0

    monkeypatch.setattr(optuna.pruners.MedianPruner, "prune", prune_after_first_trial)
    data = write_sentiment_csv(tmp_path / "learnable.csv", copies=20)  # trial 0 learns: it is crowned and kept
    recipe = tune_recipe(
        tmp_path, tiny_models["bert"], data, space={"train.epochs": [3]}, train={"learning_rate": 3e-3}
    )
    out = tmp_path / "tune"
    result = invoke("tune", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output
    trials = json.loads((out / "trials.json").read_text())["trials"]
    assert [t["state"] for t in trials] == ["complete", "pruned", "pruned"]
    assert [t["evaluations"] for t in trials] == [3, 1, 1]  # stopped at the first of its three evaluations
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["trial-0"]
    assert "[trial 1] pruned: eval_accuracy" in result.output


def test_the_pruning_callback_reports_each_evaluation_during_training_only() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(
        optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.9, 1: 0.9}, params={}, distributions={})
    )
    trial = study.ask()
    callback = ReportToTrial(trial, "eval_accuracy")
    callback.on_evaluate(None, None, None, metrics={"eval_accuracy": 0.1})  # before training (not a step): ignored
    callback.on_train_begin(None, None, None)
    with pytest.raises(optuna.TrialPruned, match=r"eval_accuracy 0\.1000 after 1 evaluations"):
        callback.on_evaluate(None, None, None, metrics={"eval_accuracy": 0.1, "eval_loss": 2.0})
    assert study.trials[-1].intermediate_values == {0: 0.1}


@pytest.mark.parametrize(
    ("space", "fragments"),
    [
        ({"train.learnin_rate": {"low": 1e-4, "high": 1e-3}}, ["tune.space.train.learnin_rate", "'learning_rate'"]),
        ({"method.rank": [4, 8]}, ["tune.space.method.rank", "method (full) has no field 'rank'"]),
        ({"train.batch_size": []}, ["tune.space.train.batch_size", "choices is empty"]),
        ({"train.learning_rate": {"low": 1e-2, "high": 1e-4}}, ["tune.space.train.learning_rate", "above high"]),
        ({"train.learning_rate": {"low": 0, "high": 1e-3, "log": True}}, ["log scale needs bounds above 0"]),
        ({"train.epochs": {"low": 0, "high": 2}}, ["tune.space.train.epochs = 0", "greater than 0"]),
        ({"train.trainer.lr_sheduler_type": ["linear"]}, ["lr_sheduler_type", "'lr_scheduler_type'"]),
    ],
)
def test_bad_search_spaces_are_one_line_errors_before_any_work(
    space: dict[str, Any], fragments: list[str], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = tune_recipe(tmp_path, "no-such-model", sentiment_csv, space=space)  # refused before the model is read
    user_error(invoke("tune", recipe, "--output-dir", tmp_path / "tune"), *fragments)
    assert not (tmp_path / "tune").exists()
    user_error(invoke("validate", recipe), *fragments)  # validate checks the search space the same way


def test_storage_that_cannot_be_opened_is_one_line_without_the_password(sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = tune_recipe(tmp_path, "no-such-model", sentiment_csv)
    missing = f"sqlite:///{tmp_path}/no/such/folder/study.db"
    user_error(invoke("tune", recipe, "--storage", missing), "--storage", "cannot open the study database")
    server = invoke("tune", recipe, "--storage", "postgresql://me:s3cret@127.0.0.1:1/studies")
    line = user_error(server, "--storage postgresql://me:***@127.0.0.1:1/studies", "cannot open")
    assert "s3cret" not in server.output and "s3cret" not in line
    user_error(invoke("tune", recipe, "--storage", "not a url"), "not a database URL")


def test_a_recipe_without_a_tune_section_says_how_to_add_one(sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, "no-such-model", sentiment_csv)
    user_error(invoke("tune", recipe), "no tune: section", "recipes/sst2_minilm_lora_tune.yaml")
    lr_set = write_recipe(
        tmp_path / "b", "m", sentiment_csv, method={"name": "lora", "learning_rate": 1e-3}, tune={"space": SPACE}
    )
    user_error(invoke("tune", lr_set), "method.learning_rate", "search method.learning_rate instead")
    no_end = write_recipe(tmp_path / "c", "m", sentiment_csv, tune={"space": SPACE, "trials": None})
    user_error(invoke("tune", no_end), "tune.trials or tune.timeout_minutes")
    metric = write_recipe(tmp_path / "d", "m", sentiment_csv, tune={"space": SPACE, "metric": "acuracy"})
    user_error(invoke("tune", metric), "tune.metric 'acuracy'", "'accuracy'")


def test_list_choices_are_searched_and_written_back_as_lists(tmp_path: Path, sentiment_csv: Path) -> None:
    from nlp_transfer.studies.tune.space import SearchSpace

    recipe = write_recipe(
        tmp_path,
        "m",
        sentiment_csv,
        method={"name": "lora"},
        tune={"space": {"method.target_modules": [["query", "value"], ["query", "key", "value", "dense"]]}},
    )
    space = SearchSpace(load_recipe(recipe))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        values = space.suggest(study.ask())
        modules = values["method.target_modules"]
        assert isinstance(modules, list)
        seen.add(tuple(modules))
        assert space.recipe(values, tmp_path / "r").recipe.method.target_modules == modules  # type: ignore[union-attr]
    assert seen == {("query", "value"), ("query", "key", "value", "dense")}
    assert yaml.safe_load(recipe.read_text())["tune"]["space"]["method.target_modules"][0] == ["query", "value"]


def test_evaluating_every_n_steps_saves_there_too() -> None:
    """Pruning wants several evaluations a trial (train.eval_steps); the best one is kept, so checkpoints must fall
    on them: any eval_steps works, not only divisors of the Trainer's default save_steps (500)."""
    from nlp_transfer.recipe import TrainSpec
    from nlp_transfer.train.arguments import training_arguments

    arguments = training_arguments(TrainSpec(eval_strategy="steps", eval_steps=40), Path("unused"))
    assert arguments.save_steps == 40 and arguments.load_best_model_at_end


def test_trials_whose_settings_fail_are_recorded_and_three_in_a_row_stop_the_worker(
    sentiment_csv: Path, tmp_path: Path
) -> None:
    # Each value is valid alone (checked before the search); together they are not: every trial fails.
    space = {"train.eval_strategy": ["no"], "train.early_stopping_patience": [1]}
    recipe = tune_recipe(tmp_path, "no-such-model", sentiment_csv, space=space)
    out = tmp_path / "tune"
    user_error(invoke("tune", recipe, "--output-dir", out), "3 trials in a row failed", "early_stopping_patience")
    rows = json.loads((out / "trials.json").read_text())["trials"]
    assert [row["state"] for row in rows] == ["failed"] * 3
    assert all("needs evaluation" in row["error"] for row in rows)


@pytest.mark.parametrize(
    ("name", "kind"), [("median", "MedianPruner"), ("hyperband", "HyperbandPruner"), ("none", "NopPruner")]
)
def test_the_recipe_pruner_is_the_study_pruner(name: str, kind: str) -> None:
    """tune.pruner reaches the study each worker optimises (a pruner lives in the process, not the storage)."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.tune.storage import open_study

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "sst2_minilm_lora_tune.yaml"
    loaded = load_recipe(recipe, [f"tune.pruner={name}", "tune.startup_trials=2"])
    study = open_study(optuna.storages.InMemoryStorage(), "s", loaded, "maximize", "memory")
    assert type(study.pruner).__name__ == kind


def test_a_study_that_is_not_ours_to_join_is_refused_before_anything_is_written(
    tmp_path: Path, sentiment_csv: Path
) -> None:
    """A user's own study under the name (trials, no recipe of ours) and one made to the other direction are
    refused, and neither is written into (no recipe attribute set, no trial added)."""
    recipe = write_recipe(tmp_path, "no-such-model", sentiment_csv, tune={"space": SPACE})  # maximizes accuracy
    url = f"sqlite:///{tmp_path}/theirs.db"
    theirs = optuna.create_study(storage=url, study_name="theirs", direction="maximize")
    theirs.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    optuna.create_study(storage=url, study_name="minimizing", direction="minimize")
    cases = {"theirs": ("study 'theirs'", "not made by nlp-transfer tune"), "minimizing": ("created to minimize",)}
    for name, fragments in cases.items():
        user_error(invoke("tune", recipe, "--storage", url, "--study-name", name), *fragments)
        study = optuna.load_study(study_name=name, storage=url)
        assert study.user_attrs == {}, name
        assert len(study.get_trials()) == (1 if name == "theirs" else 0)


def test_a_search_space_path_typo_gets_a_did_you_mean(tmp_path: Path, sentiment_csv: Path) -> None:
    for path, fragment in (
        ("train.learnig_rate", "did you mean 'learning_rate'"),
        ("trian.learning_rate", "did you mean 'train'"),
        ("method.rr", "did you mean 'r'"),
        ("train.optim", "search train.trainer.optim"),  # a TrainingArguments setting lives under train.trainer
    ):
        recipe = write_recipe(
            tmp_path / path, "m", sentiment_csv, method={"name": "lora"}, tune={"space": {path: [1, 2]}}
        )
        user_error(invoke("tune", recipe), f"tune.space.{path}", fragment)
        assert not (tmp_path / path / "runs").exists()
