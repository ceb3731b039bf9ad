"""pydantic's validation errors as one line a user can act on: the field path, what is wrong, a suggestion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from nlp_transfer.core.errors import did_you_mean
from nlp_transfer.recipe.adapt_spec import AdaptSpec
from nlp_transfer.recipe.schema import Recipe


def describe_validation_error(err: ValidationError) -> str:
    """The first problem, as `field.path: what is wrong (did you mean ...)`, plus a count of the others."""
    errors = err.errors()
    first = errors[0]
    message = _describe_one(first)
    # A union (e.g. a split given as text, a mapping or a list) reports one error per member; count distinct fields.
    others = {_loc_text(e["loc"]) for e in errors[1:]} - {_loc_text(first["loc"])}
    return message + (f" (and {len(others)} more problem(s))" if others else "")


def _describe_one(error: Any) -> str:
    loc = _loc_text(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        known = _fields_at(error["loc"][:-1])
        return f"{loc}: unknown field '{field}'{did_you_mean(field, known)}; known fields: {', '.join(known)}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        expected = [t.strip(" '") for t in error["ctx"]["expected_tags"].split(",")]
        return f"{loc}.name: unknown {loc} '{tag}'{did_you_mean(tag, expected)}; choose one of {', '.join(expected)}"
    if kind == "union_tag_not_found":
        return f"{loc}: missing 'name' (which {loc} to use)"
    if kind == "missing":
        return f"{loc}: required field is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {error['msg']} (got {error.get('input')!r})"


def _union_noise() -> set[str]:
    """Discriminator tags and union-member names that pydantic puts in error paths; users never wrote them."""
    noise = {"str", "DataFile", "list[union[str,DataFile]]"}
    for field in ("task", "method"):
        noise.update(str(_tag_of(model)) for model in _models_in(Recipe, field))
    noise.update(str(_tag_of(model)) for model in _models_in(AdaptSpec, "stages"))
    return noise


def _loc_text(loc: tuple[Any, ...]) -> str:
    noise = _union_noise()
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in noise)]
    return ".".join(parts) if parts else "recipe"


def _models_in(model: type[BaseModel], field: str) -> list[type[BaseModel]]:
    """The pydantic models a field can hold (one, or the members of a union, however nested)."""
    found: list[type[BaseModel]] = []
    pending: list[Any] = [model.model_fields[field].annotation]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.append(annotation)
        pending.extend(getattr(annotation, "__args__", ()))
    return found


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the schema section at a pydantic error path (tags and member names pick the union member)."""
    model: type[BaseModel] = Recipe
    candidates: list[type[BaseModel]] = [Recipe]
    for part in loc:
        by_tag = [c for c in candidates if part in (c.__name__, _tag_of(c))]
        if by_tag:
            model, candidates = by_tag[0], by_tag
            continue
        if isinstance(part, str) and part in model.model_fields:
            candidates = _models_in(model, part)
            if not candidates:
                return []
            model = candidates[0]
    return list(model.model_fields)


def _tag_of(model: type[BaseModel]) -> str | None:
    name = model.model_fields.get("name")
    args = getattr(name.annotation, "__args__", ()) if name else ()
    return str(args[0]) if args else None
