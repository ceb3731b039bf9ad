"""Reading a recipe: YAML (safely), `-o key.sub=value` overrides, validation; every failure is one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe.messages import describe_validation_error
from nlp_transfer.recipe.schema import Recipe


@dataclass(frozen=True)
class LoadedRecipe:
    recipe: Recipe
    path: Path  # the YAML file it came from
    name: str  # file stem, names default run folders

    def to_yaml(self) -> str:
        return dump_yaml(self.recipe.model_dump(mode="json"))


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ---- loading --------------------------------------------------------------------------------------------------


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> LoadedRecipe:
    """Read YAML safely, apply `key.sub=value` overrides, validate. Every failure is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found; check the path (shipped recipes live in recipes/)")
    try:
        # From bytes, so YAML reads the encoding from a byte-order mark: UTF-8 (with or without one) and UTF-16.
        raw = yaml.safe_load(path.read_bytes())
    except yaml.reader.ReaderError as err:  # bytes that are not text in those encodings: not a syntax error
        raise UserError(
            f"{path}: not UTF-8 or UTF-16 text (byte 0x{err.character:02x} at position {err.position}); "
            "save the recipe as UTF-8"
        ) from err
    except yaml.YAMLError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not valid YAML ({first_line}); fix the syntax") from err
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping with model, task, data, ... ; got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override, path)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=path, name=path.stem)


def replace_method(loaded: LoadedRecipe, method: dict[str, Any], suffix: str = "") -> LoadedRecipe:
    """The same recipe with another method section (validated like one written in the file)."""
    raw = loaded.recipe.model_dump(mode="json")
    raw["method"] = method
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{loaded.path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=loaded.path, name=loaded.name + suffix)


def apply_override(raw: dict[str, Any], override: str, path: Path) -> None:
    """`train.learning_rate=3e-5` sets raw['train']['learning_rate'] = 3e-05 (the value is parsed as YAML); a number
    picks a list item: `adapt.stages.0.epochs=2`."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override '{override}': expected key.sub=value, e.g. -o train.learning_rate=3e-5")
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override '{override}': {path}: '{where}': the list has items 0..{len(node) - 1}")
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise UserError(f"override '{override}': {path}: '{where}' is inside a value, not a section")
        if depth == len(parts) - 1:
            try:
                node[index] = yaml.safe_load(value)
            except yaml.YAMLError as err:
                raise UserError(f"override '{override}': the value is not valid YAML; quote it") from err
            return
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[index]
