"""Recipe schema, overrides, and the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nlp_transfer.cli import app
from nlp_transfer.core.errors import UserError
from nlp_transfer.methods import METHODS
from nlp_transfer.recipe import Recipe, load_recipe
from nlp_transfer.tasks import TASKS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))


def _tags(field: str) -> set[str | None]:
    from nlp_transfer.recipe.messages import _models_in, _tag_of

    return {_tag_of(model) for model in _models_in(Recipe, field)}


def test_tables_match_schema() -> None:
    """Every task/method the schema accepts has an implementation, and nothing else is registered."""
    assert set(TASKS) == _tags("task")
    assert set(METHODS) == _tags("method")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_is_valid(path: Path) -> None:
    loaded = load_recipe(path)
    assert loaded.recipe.model.name
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "shipped recipes open with a comment: what it does, how to run it"
    assert "Run:" in text.split("\n\n")[0] or "make " in text.split("\n\n")[0]


def test_shipped_recipes_exist() -> None:
    names = {p.name for p in SHIPPED}
    assert {"quickstart.yaml", "sst2_distilbert.yaml"} <= names


def test_defaults_are_filled_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "model: {name: m}\ntask: {name: classification}\ndata: {train: t.csv}\n",
        encoding="utf-8",
    )
    loaded = load_recipe(path)
    assert loaded.recipe.method.name == "full"
    assert loaded.recipe.train.padding == "dynamic" and loaded.recipe.train.group_by_length
    # The resolved YAML is itself a valid recipe with the same content.
    again = tmp_path / "again.yaml"
    again.write_text(loaded.to_yaml(), encoding="utf-8")
    assert load_recipe(again).recipe == loaded.recipe


def test_overrides_parse_yaml_values_and_create_sections(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: m}\ntask: {name: classification}\ndata: {train: t.csv}\n", encoding="utf-8")
    loaded = load_recipe(
        path,
        ["train.learning_rate=3e-5", "train.trainer.lr_scheduler_type=cosine", "task.labels=[neg, pos]"],
    )
    assert loaded.recipe.train.learning_rate == pytest.approx(3e-5)
    assert loaded.recipe.train.trainer == {"lr_scheduler_type": "cosine"}
    assert loaded.recipe.task.labels == ["neg", "pos"]


def test_cross_field_checks(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: m}\ntask: {name: classification}\ndata: {train: t.csv}\n", encoding="utf-8")
    with pytest.raises(UserError, match="eval_steps"):
        load_recipe(path, ["train.eval_strategy=steps"])
    with pytest.raises(UserError, match=r"metric_for_best 'acuracy'.*did you mean 'accuracy'"):
        load_recipe(path, ["train.metric_for_best=acuracy"])


def test_show_prints_resolved_recipe_and_validate_accepts() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["show", str(REPO / "recipes" / "quickstart.yaml"), "-o", "train.epochs=2"])
    assert shown.exit_code == 0, shown.output
    resolved = yaml.safe_load(shown.stdout)
    assert resolved["train"]["epochs"] == 2
    assert resolved["train"]["weight_decay"] == 0.01  # a default, filled in
    valid = runner.invoke(app, ["validate", str(REPO / "recipes" / "quickstart.yaml")])
    assert valid.exit_code == 0 and "valid" in valid.stdout


@pytest.mark.parametrize("path", [p for p in SHIPPED if "tune:" in p.read_text(encoding="utf-8")], ids=lambda p: p.name)
def test_shipped_search_spaces_build_every_bound_and_choice(path: Path) -> None:
    from nlp_transfer.studies.tune.space import SearchSpace

    SearchSpace(load_recipe(path)).check()
