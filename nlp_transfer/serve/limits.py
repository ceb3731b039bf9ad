"""What one request may ask: body size, inputs per request, characters per text, time. Checked before a request
queues; a request over a limit gets a 4xx naming the limit and the option that sets it.

Characters per text: by default a long text is treated as the model's own policy says (truncated to its max_length
tokens, or cut into windows), exactly as `predict` treats it. --max-chars refuses longer texts (413); --strict also
refuses a text the model would truncate (422), for callers who must know nothing was cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nlp_transfer.serve.models import InputError, ServedModel
from nlp_transfer.tasks.text_inputs import TextInputs
from nlp_transfer.use.inputs import Item


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # FastAPI's own limit (max_body_size) enforces it, as the body streams in
    max_inputs: int = 256
    max_chars: int | None = None
    strict: bool = False
    timeout: float = 30.0  # seconds from arrival to answer


def check_inputs(model: ServedModel, items: list[Item], limits: Limits) -> None:
    """The request's items against --max-inputs, --max-chars and --strict (InputError with its status)."""
    if len(items) > limits.max_inputs:
        raise InputError(f"inputs has {len(items)} entries; the limit is {limits.max_inputs} (--max-inputs)", 413)
    for index, item in enumerate(items):
        for role in model.roles:
            text = item[role]
            if limits.max_chars is not None and len(text) > limits.max_chars:
                raise InputError(
                    f"inputs[{index}].{role} has {len(text)} characters; the limit is {limits.max_chars} (--max-chars)",
                    413,
                )
    if limits.strict:
        _refuse_truncated(model, items)


def _refuse_truncated(model: ServedModel, items: list[Item]) -> None:
    """--strict: a text the model would truncate is refused (a windowed model or QA reads every token: nothing is)."""
    settings = model.trained.task_settings
    if "text" not in model.roles or TextInputs.of(settings).windowed:
        return
    predictor: Any = model.predictor
    tokenizer = getattr(predictor, "text_model", predictor).tokenizer  # the text tasks' TextModel holds it
    pairs = "text_pair" in model.roles
    texts = [item["text"] for item in items]
    encoded = tokenizer(texts, [item["text_pair"] for item in items] if pairs else None, truncation=False)
    for index, ids in enumerate(encoded["input_ids"]):
        if len(ids) > settings["max_length"]:
            raise InputError(
                f"inputs[{index}] is {len(ids)} tokens; this model reads {settings['max_length']} and would truncate "
                "it (the server runs with --strict)",
                422,
            )
