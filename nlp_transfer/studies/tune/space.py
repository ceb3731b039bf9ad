"""The search space: the recipe's tune.space as Optuna distributions, and a trial's values written into the recipe.

Every field path was checked against the recipe when it loaded (recipe/tune_spec.py); here every value a trial can
draw is checked too, before any work: each range's bounds and each choice is written into the recipe, which is then
validated (and its train.trainer settings built), so `train.epochs: {low: 0, ...}` fails now, in one line, rather
than in trial 7.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import LoadedRecipe, Recipe, SearchRange, describe_validation_error

PRIMITIVE = (str, int, float, bool, type(None))  # what Optuna stores as a categorical choice as it is


@dataclass(frozen=True)
class Dimension:
    """One searched field: its dotted path, its range, and how a choice is stored (lists as their JSON text)."""

    path: str
    range: SearchRange

    @property
    def labels(self) -> list[Any]:
        """Choices as Optuna stores them: primitives as they are, anything else (a list of modules) as JSON."""
        return [c if isinstance(c, PRIMITIVE) else json.dumps(c) for c in self.range.choices or []]

    def value(self, drawn: Any) -> Any:
        """A value Optuna drew -> the value written into the recipe (a JSON label back to its list)."""
        if self.range.choices is not None:
            return self.range.choices[self.labels.index(drawn)]
        return drawn

    def suggest(self, trial: Any) -> Any:
        """Draw this field's value for a trial (Optuna's public suggest API) and return it as the recipe takes it."""
        searched = self.range
        if searched.choices is not None:
            return self.value(trial.suggest_categorical(self.path, self.labels))
        assert searched.low is not None and searched.high is not None
        if searched.is_int:
            step = int(searched.step or 1)
            return trial.suggest_int(self.path, int(searched.low), int(searched.high), step=step, log=searched.log)
        low, high = float(searched.low), float(searched.high)
        return trial.suggest_float(self.path, low, high, step=searched.step, log=searched.log)

    def candidates(self) -> list[Any]:
        """The values worth checking before any work: the bounds, or every choice."""
        if self.range.choices is not None:
            return list(self.range.choices)
        return [self.range.low, self.range.high]


class SearchSpace:
    def __init__(self, loaded: LoadedRecipe) -> None:
        tune = loaded.recipe.tune
        if tune is None:
            raise UserError(
                f"{loaded.path}: no tune: section; add one naming the fields to search "
                "(see recipes/sst2_minilm_lora_tune.yaml)"
            )
        self.loaded = loaded
        self.dimensions = [Dimension(path, searched) for path, searched in tune.space.items()]
        method = loaded.recipe.method
        own_rate = getattr(method, "learning_rate", None)
        if "train.learning_rate" in tune.space and own_rate is not None:
            raise UserError(
                f"{loaded.path}: tune.space.train.learning_rate: method.learning_rate "
                f"({own_rate}) overrides it for method {method.name}, so the search would "
                "change nothing; search method.learning_rate instead"
            )

    def suggest(self, trial: Any) -> dict[str, Any]:
        """A trial's values, drawn by the study's sampler: {field path: recipe value}."""
        return {d.path: d.suggest(trial) for d in self.dimensions}

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        """A finished trial's params (as Optuna stores them) -> {field path: recipe value}."""
        return {d.path: d.value(params[d.path]) for d in self.dimensions}

    def own_values(self) -> dict[str, Any]:
        """The recipe's own value at each searched path (what the confirmation compares the best trial's with)."""
        raw = self.loaded.recipe.model_dump(mode="json")
        return {d.path: get_field(raw, d.path) for d in self.dimensions}

    def check(self) -> None:
        """Build the recipe with each bound and each choice (the others as written) before anything is trained."""
        from nlp_transfer.train.arguments import training_arguments

        searched = self.recipe({}, Path("unused"), where="tune.search_only")  # its settings alone, then with each value
        try:
            training_arguments(searched.recipe.train, Path("unused"))
        except UserError as err:
            raise UserError(f"{self.loaded.path}: tune.search_only: {err}") from err
        for dimension in self.dimensions:
            for candidate in dimension.candidates():
                where = f"tune.space.{dimension.path}"
                recipe = self.recipe({dimension.path: candidate}, Path("unused"), where=f"{where} = {candidate!r}")
                try:
                    training_arguments(recipe.recipe.train, Path("unused"))
                except UserError as err:
                    raise UserError(f"{self.loaded.path}: {where} = {candidate!r}: {err}") from err

    def recipe(
        self,
        values: dict[str, Any],
        output_dir: Path,
        where: str = "tune",
        *,
        search: bool = True,
        seed: int | None = None,
    ) -> LoadedRecipe:
        """The recipe with these values written in, its own tune section left out, running into `output_dir`.

        `search`: a trial's recipe, with tune.search_only applied; False: the user's recipe (confirmation, best
        recipe). `seed`: train.seed for this run (a trial's further seeds, the confirmation's fresh ones)."""
        tune = self.loaded.recipe.tune
        raw = self.loaded.recipe.model_dump(mode="json")
        raw["tune"] = None
        raw.setdefault("output", {})["dir"] = str(output_dir)
        settings = {**(tune.search_only if search and tune is not None else {}), **values}
        if seed is not None:
            settings["train.seed"] = seed
        for path, value in settings.items():
            set_field(raw, path, copy.deepcopy(value))
        try:
            recipe = Recipe.model_validate(raw)
        except ValidationError as err:
            raise UserError(f"{self.loaded.path}: {where}: {describe_validation_error(err)}") from err
        return LoadedRecipe(recipe=recipe, path=self.loaded.path, name=self.loaded.name)


def set_field(raw: dict[str, Any], path: str, value: Any) -> None:
    """raw['method']['r'] = value for 'method.r' (sections that are unset are created, as -o does)."""
    node: Any = raw
    parts = path.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def get_field(raw: dict[str, Any], path: str) -> Any:
    """raw['method']['r'] for 'method.r' (None where a section is unset)."""
    node: Any = raw
    for part in path.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node
