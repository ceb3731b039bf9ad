"""What the server serves: each model under its name, its predictor (use.predict: the code path `predict` runs),
what GET /v1/models says about it, and how a request's inputs become the predictor's items.

An input has the shape of a `predict --file` row: an object whose fields are the model's inputs under the columns it
was trained on (or the roles' own names: text, text_pair, question, context), other fields kept as predict keeps
them; a text model also takes a plain string. Each is then checked by the predictor's own input side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.serve.speed import prepare_for_serving
from nlp_transfer.use.inputs import FileColumns, Item, PredictInputs, Role
from nlp_transfer.use.predict import Predictor, predictor_for
from nlp_transfer.use.prediction_files import joined
from nlp_transfer.use.trained import Trained, open_trained

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROLES_OF_A_FILE = PredictInputs(texts=[], file=Path("request.jsonl"))  # asks an input side for its file roles


class InputError(Exception):
    """A request input the model cannot take: `field` names it, the message says why and what to send."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServedModel:
    name: str
    trained: Trained
    predictor: Predictor
    roles: dict[str, Role]
    runtime: Runtime

    def describe(self) -> dict[str, Any]:
        """What GET /v1/models says about it."""
        predictor: Any = self.predictor
        labels = getattr(predictor, "names", None) or [str(v) for v in getattr(predictor, "id2label", {}).values()]
        precision = self.trained.backend if self.trained.onnx else f"{self.runtime.precision.name} (pytorch)"
        return {
            "name": self.name,
            "task": self.trained.recipe["task"]["name"],
            "labels": labels,
            "base_model": str(self.trained.recipe.get("model", {}).get("name", "")),
            "device": "cpu" if self.trained.onnx else str(self.runtime.device),
            "precision": precision,
            "max_length": self.trained.task_settings.get("max_length"),
            "inputs": {role: sorted({found.column, role}) for role, found in self.roles.items()},
        }

    def items(self, inputs: list[Any]) -> list[Item]:
        """The request's inputs as the predictor's items, each checked (InputError naming inputs[i])."""
        return [self._item(given, f"inputs[{index}]") for index, given in enumerate(inputs)]

    def _item(self, given: Any, where: str) -> Item:
        if isinstance(given, str):
            if list(self.roles) != ["text"]:
                raise InputError(f"{where} is a string; this model reads {self._shape()}")
            given = {"text": given}
        item = dict(given)
        for role, found in self.roles.items():
            column = found.column if found.column in given else role
            value = given.get(column)
            if value is None:
                raise InputError(
                    f"{where} has no field '{found.column}' (the {role}); this model reads {self._shape()}"
                )
            if not isinstance(value, str):
                raise InputError(f"{where}.{column} must be a string, not {type(value).__name__}")
            item[role] = value
        try:
            self.predictor.items.check(item, where)
        except UserError as err:
            raise InputError(str(err).removeprefix("predict: ")) from err
        return item

    def answer(self, given: Any, row: dict[str, Any]) -> dict[str, Any]:
        """One output as `predict --file` writes it for the same row: the input's own fields, then the prediction."""
        if not isinstance(given, dict):
            return row
        roles = {role: found.column if found.column in given else role for role, found in self.roles.items()}
        return joined(given, row, FileColumns(roles=roles, kept=list(given)))

    def _shape(self) -> str:
        fields = ", ".join(f'"{role}": "..."' for role in self.roles)
        return "{" + fields + "}" + (" (or a plain string)" if list(self.roles) == ["text"] else "")


def model_names(models: list[str], named: list[str]) -> dict[str, str]:
    """name -> reference, from MODEL arguments (named after their folder) and --name NAME=PATH options."""
    found: dict[str, str] = {}
    for option in named:
        name, sep, reference = option.partition("=")
        if not sep or not reference:
            raise UserError(f"--name {option}: give NAME=PATH, e.g. --name sst2=runs/quickstart")
        _add(found, name, reference, f"--name {option}")
    for reference in models:
        path = Path(reference)
        name = path.parent.name + ("-int8" if "int8" in path.name else "-onnx") if path.suffix == ".onnx" else path.name
        _add(found, name or "model", reference, reference)
    if not found:
        raise UserError("serve: give at least one MODEL (a run folder, an export, model.onnx, or a repo id)")
    return found


def _add(found: dict[str, str], name: str, reference: str, where: str) -> None:
    if not NAME.match(name):
        raise UserError(
            f"{where}: '{name}' cannot name a model in a URL; use letters, digits, '.', '_' and '-' (--name NAME=PATH)"
        )
    if name in found:
        raise UserError(f"{where}: a model named '{name}' is served already; name one with --name OTHER={reference}")
    found[name] = reference


def open_models(references: dict[str, str]) -> list[Trained]:
    """Every model opened (files checked, nothing loaded): bad input is found before any weights load."""
    return [open_trained(reference) for reference in references.values()]


def load_model(name: str, trained: Trained, runtime: Runtime, batch_size: int) -> ServedModel:
    """The model's predictor, loaded, prepared for serving (serve.speed) and warmed up on one input (the first
    request is not the slow one)."""
    if trained.onnx is not None:
        runtime = Runtime.choose("cpu", "fp32")  # onnxruntime runs on the CPU, in the file's own precision
    predictor = predictor_for(trained, batch_size, runtime)
    prepare_for_serving(predictor, runtime)
    roles = predictor.items.roles(ROLES_OF_A_FILE)
    served = ServedModel(name, trained, predictor, roles, runtime)
    predictor.predict_batch([{role: "warm up" for role in roles}])
    return served
