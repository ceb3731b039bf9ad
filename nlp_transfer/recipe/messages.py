"""pydantic's validation errors as one line a user can act on: the field path, what is wrong, a suggestion."""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from nlp_transfer.core.errors import did_you_mean
from nlp_transfer.recipe.adapt_spec import AdaptSpec
from nlp_transfer.recipe.schema import Recipe
from nlp_transfer.recipe.task_specs import MultiLabelTask


def describe_validation_error(err: ValidationError) -> str:
    """The first problem, as `field.path: what is wrong (did you mean ...)`, plus a count of the others."""
    errors = err.errors()
    first = _member_meant(errors)
    message = _describe_one(first)
    # A union (e.g. a split given as text, a mapping or a list) reports one error per member; count distinct fields.
    field = _field_of(first["loc"])
    others = {_loc_text(e["loc"]) for e in errors if _field_of(e["loc"]) != field}
    return message + (f" (and {len(others)} more problem(s))" if others else "")


def _is_member(part: Any) -> bool:
    """A union member's name in an error path (`literal['none','balanced']`, `list[float]`): users never wrote it."""
    return isinstance(part, str) and ("[" in part or part in _union_noise())


def _field_of(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The path up to the first union member: the field the user wrote, whichever member an error is about."""
    index = next((i for i, part in enumerate(loc) if isinstance(part, str) and "[" in part), len(loc))
    return tuple(part for part in loc[:index] if not _is_member(part))


def _member_meant(errors: list[Any]) -> Any:
    """Of a union's errors for the first field, the one about the member the input's shape says was meant: a list
    given for `none | balanced | list of weights` is told what is wrong in the list, not that it is no literal."""
    first = errors[0]
    field = _field_of(first["loc"])
    value = next(
        (e["input"] for e in errors if _field_of(e["loc"]) == field and e["loc"] and _is_member(e["loc"][-1])), None
    )
    shape = "list[" if isinstance(value, list) else "dict[" if isinstance(value, dict) else None
    if shape is None:
        return first
    meant = [
        e
        for e in errors
        if _field_of(e["loc"]) == field and any(isinstance(p, str) and p.startswith(shape) for p in e["loc"])
    ]
    return meant[0] if meant else first


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
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        hint = did_you_mean(str(error.get("input")), allowed) if isinstance(error.get("input"), str) else ""
        return f"{loc}: {error['msg']} (got {error.get('input')!r}){hint}"
    return f"{loc}: {error['msg']} (got {error.get('input')!r})"


@functools.cache
def _union_noise() -> frozenset[str]:
    """Discriminator tags and union-member names that pydantic puts in error paths; users never wrote them."""
    noise = {"str", "DataFile", "list[union[str,DataFile]]"}
    for field in ("task", "method"):
        noise.update(str(_tag_of(model)) for model in _models_in(Recipe, field))
    noise.update(str(_tag_of(model)) for model in _models_in(AdaptSpec, "stages"))
    noise.update(str(_tag_of(model)) for model in _models_in(MultiLabelTask, "loss"))
    return frozenset(noise)


def _loc_text(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not _is_member(p)]
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
