"""Every method x task pair: a method serves the tasks it declares (METHODS entries' `serves`) and prepares for each
on a tiny model; a task it does not serve is refused in one line before anything loads (contrastive pairs on
regression targets). Adapt stages likewise (self_train and prior_correction need class labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nlp_transfer.core.errors import UserError
from nlp_transfer.methods import METHODS
from nlp_transfer.recipe import load_recipe
from nlp_transfer.studies.adapt.stages import RUNNERS
from nlp_transfer.tasks import TASKS
from nlp_transfer.train import pipeline
from nlp_transfer.train.pipeline import RunOptions, prepare_run
from tests.conftest import DATA_ROOT, invoke, user_error
from tests.unit.labels_data import write_emotions
from tests.unit.test_token_classification import conll_text

METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {},
    "probe": {},
    "unfreeze_last": {"layers": 1},
    "lora": {"r": 4},
    "probe_then_finetune": {},
    "scratch": {},
    "contrastive": {},
}


def task_sections(task: str, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task, data) recipe sections of a small data set for the task."""
    if task == "qa":
        qa = {"name": "qa", "max_length": 96, "stride": 24}
        return qa, {"train": "squad_mini/train.json", "eval": "squad_mini/dev.json", "max_train_samples": 16}
    if task == "token_classification":
        tagged = folder / "tagged.conll"
        tagged.write_text(conll_text(copies=1), encoding="utf-8")
        return {"name": task, "max_length": 64}, {"train": str(tagged), "eval": str(tagged)}
    train, evaluation = write_emotions(folder)
    data = {"train": str(train), "eval": str(evaluation)}
    label = {"classification": "ids", "multi_label": "labels", "regression": "score"}[task]
    return {"name": task, "text": "text", "label": label, "max_length": 32}, data


def write_pair_recipe(folder: Path, model: Path, method: str, task: str) -> Path:
    task_section, data = task_sections(task, folder)
    recipe = {
        "model": {"name": str(model)},
        "task": task_section,
        "method": {"name": method, **METHOD_SETTINGS[method]},
        "data": data,
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "seed": 0},
        "output": {"dir": str(folder / "run")},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_the_method_settings_cover_every_method() -> None:
    assert set(METHOD_SETTINGS) == set(METHODS)
    for method in METHODS.values():  # a declared task that does not exist would never be checked
        assert method.serves is None or method.serves <= set(TASKS), method
    for stage in RUNNERS.values():
        assert stage.serves is None or stage.serves <= set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_prepares_for_the_tasks_it_serves_and_refuses_the_others(
    method: str, task: str, tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_pair_recipe(tmp_path, tiny_models["bert"], method, task)
    served = METHODS[method].serves
    if served is None or task in served:
        prepared = prepare_run(load_recipe(recipe), RunOptions(data_root=DATA_ROOT))
        assert len(prepared.data.splits["train"]) > 0
        return

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was resolved before the method was checked against the task")

    monkeypatch.setattr(pipeline, "resolve_model", no_loading)
    with pytest.raises(UserError, match=f"method.name {method}: serves the tasks .*, not {task}"):
        prepare_run(load_recipe(recipe), RunOptions(data_root=DATA_ROOT))


def test_contrastive_on_regression_is_one_line_and_no_run_folder(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    recipe = write_pair_recipe(tmp_path, tiny_models["bert"], "contrastive", "regression")
    user_error(invoke("run", recipe), "method.name contrastive", "not regression", "use method full")
    assert not (tmp_path / "run").exists()


def test_adapt_self_train_on_regression_is_refused_before_anything_runs(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    task, data = task_sections("regression", tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"a target text {i}\n" for i in range(40)), encoding="utf-8")
    recipe = {
        "model": {"name": str(tiny_models["bert"])},
        "task": task,
        "method": {"name": "full"},
        "data": data,
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "seed": 0},
        "adapt": {"target": {"corpus": str(corpus)}, "stages": [{"name": "finetune"}, {"name": "self_train"}]},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    out = tmp_path / "adapted"
    user_error(invoke("adapt", path, "--output-dir", out), "adapt.stages: self_train", "not regression")
    assert not out.exists()
