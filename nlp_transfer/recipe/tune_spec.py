"""The recipe's `tune:` section: what `nlp-transfer tune` searches (studies/tune), how many trials, when to stop.

The search space names recipe fields by their dotted paths, as `-o` overrides do (`method.learning_rate`,
`train.epochs`, `train.trainer.lr_scheduler_type`); each gets a range (`{low, high}`, optionally `log` or `step`)
or a list of choices. Whether every path names a field of this recipe is checked with the whole recipe (schema.py).

A trial's score is the mean over `seeds` runs; `search_only` settings (a smaller training set, evaluations for the
pruner) apply to trials only; after the search the best settings and the recipe's own are retrained on `confirm`
fresh seeds at the recipe's own settings, and the report says whether the difference is more than noise.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from nlp_transfer.core.errors import did_you_mean
from nlp_transfer.recipe.base import Strict

Number = int | float


class SearchRange(Strict):
    """One field's range: `{low: 1.0e-4, high: 3.0e-3, log: true}`, `{low: 1, high: 4}` (whole numbers when both
    bounds are), or `{choices: [4, 8, 16]}` (a plain list is short for that)."""

    low: Number | None = Field(None, description="smallest value tried")
    high: Number | None = Field(None, description="largest value tried")
    log: bool = Field(False, description="sample on a log scale (learning rates); both bounds must be positive")
    step: Number | None = Field(None, gt=0, description="only values low, low + step, ... (not with log)")
    choices: list[Any] | None = Field(None, description="the values tried, any YAML values (numbers, text, lists)")

    @property
    def is_int(self) -> bool:
        bounds = (self.low, self.high) + ((self.step,) if self.step is not None else ())
        return all(isinstance(value, int) and not isinstance(value, bool) for value in bounds)

    def problem(self) -> str | None:
        """What is wrong with this range, if anything (the caller adds the field's path)."""
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                return "give either choices or low/high, not both"
            return "choices is empty; list at least one value" if not self.choices else None
        if self.low is None or self.high is None:
            return "give low and high (a range) or choices (a list)"
        if self.low > self.high:
            return f"low {self.low} is above high {self.high}; swap them"
        if self.log and self.low <= 0:
            return f"a log scale needs bounds above 0 (low is {self.low}); raise low or set log: false"
        if self.log and self.step is not None:
            return "step and log cannot be combined; drop one"
        return None


class TuneSpec(Strict):
    """Hyperparameter search with Optuna (TPE sampling, pruning on the eval metric): `nlp-transfer tune RECIPE`."""

    space: dict[str, SearchRange] = Field(
        description="recipe fields by dotted path (as with -o) and what to try, e.g. method.r: [4, 8, 16]",
    )
    metric: str | None = Field(None, description="eval metric to optimise (default: train.metric_for_best)")
    trials: int | None = Field(20, gt=0, description="finished trials (complete or pruned) the study needs")
    timeout_minutes: float | None = Field(
        None, gt=0, description="a worker starts no new trial after this long (the running one finishes)"
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="stops trials whose eval metric trails the others' at the same evaluation"
    )
    startup_trials: int = Field(
        5, ge=0, description="trials sampled at random before TPE models the results, and finished before pruning"
    )
    heartbeat_seconds: int = Field(
        10, gt=0, description="workers report every N s; a trial silent for 3 N s is marked failed and run again"
    )
    seeds: int = Field(
        1, ge=1, le=20, description="runs per trial (train.seed, +1, ...); the trial's score is their mean"
    )
    confirm: int = Field(
        3,
        ge=0,
        le=20,
        description="fresh seeds on which the best settings and the recipe's own are retrained after the search "
        "(a paired comparison; 0 skips it, and then no best_recipe.yaml is written)",
    )
    search_only: dict[str, Any] = Field(
        default_factory=dict,
        description="settings by dotted path for the trials only, e.g. data.max_train_samples: 4000 (a cheaper "
        "search); the confirmation and best_recipe.yaml use the recipe's own",
    )

    @field_validator("space", mode="before")
    @classmethod
    def _lists_are_choices(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: {"choices": item} if isinstance(item, list) else item for key, item in value.items()}
        return value

    @model_validator(mode="after")
    def _ranges_make_sense(self) -> TuneSpec:
        if not self.space:
            raise ValueError("tune.space: empty; name at least one recipe field to search, e.g. train.learning_rate")
        if self.trials is None and self.timeout_minutes is None:
            raise ValueError("tune: set tune.trials or tune.timeout_minutes (or both), or the search never ends")
        for path, searched in self.space.items():
            problem = searched.problem()
            if problem:
                raise ValueError(f"tune.space.{path}: {problem}")
        if self.confirm == 1:
            raise ValueError(
                "tune.confirm: one fresh seed cannot tell a difference from noise; use 0 (no confirmation) or at "
                "least 2 (3 recommended)"
            )
        for path in self.search_only:
            if path in self.space:
                raise ValueError(f"tune.search_only.{path}: also searched in tune.space; keep it in one of them")
        return self


def field_path_problem(recipe: BaseModel, path: str) -> str | None:
    """Why a dotted path names no field of this recipe (with a suggestion), or None when it names one. Mappings of
    free keys (train.trainer) accept any key: those are checked when the recipe is built with each value."""
    node: Any = recipe
    parts = path.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the recipe"
        if isinstance(node, BaseModel):
            fields = list(type(node).model_fields)
            if part not in fields:
                name = getattr(node, "name", None)
                kind = f" ({name})" if isinstance(name, str) and depth else ""
                hint = did_you_mean(part, fields)
                if not hint and isinstance(getattr(node, "trainer", None), dict):
                    # train.optim: the TrainingArguments settings without a train field live under train.trainer
                    hint = f" (a TrainingArguments setting? search {where}.trainer.{'.'.join(parts[depth:])})"
                return f"{where}{kind} has no field '{part}'{hint}; its fields: {', '.join(fields)}"
            node = getattr(node, part)
            if node is None and depth < len(parts) - 1:
                return f"{'.'.join(parts[: depth + 1])} is not set in this recipe, so it has no '{parts[depth + 1]}'"
        elif isinstance(node, dict):
            return None
        else:
            return f"{where} is a value, not a section with fields"
    return None
