"""How a task turns a trained model's outputs into prediction rows: the facts it reads about the model (label names,
config, its folder's records) and a Decoder, called on each batch. Running the model (texts truncated or windowed,
questions windowed, words aligned: by the task's kind of input) is the share room's; what the outputs mean is the
task's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Row = dict[str, Any]


@dataclass(frozen=True)
class ModelFacts:
    """What a decoder may read about the trained model: its label names in id order, its transformers config, its
    folder (records such as thresholds.json), the task's settings and where the model came from (for messages)."""

    label_names: list[str]
    config: Any
    folder: Path
    settings: dict[str, Any]
    origin: str


class Decoder(Protocol):
    def __call__(self, items: list[Row], outputs: Any, /) -> list[Row]:
        """One prediction row per input, in the batch's order. `outputs`: what the task's kind of input gives for
        the batch (texts: (B, K) float logits or values, one row per text; questions: the best answer of each;
        words: (words, K) tag probabilities per sentence)."""
        ...


def echo(item: Row, dropped: tuple[str, ...] = ()) -> Row:
    """The input as it starts its output row, less the fields the prediction replaces."""
    return {key: value for key, value in item.items() if key not in dropped}
