"""The recipe's `augment:` section: extra, altered copies of the training examples (never of eval or test)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from nlp_transfer.recipe.base import Strict

Operation = Literal["delete", "swap", "insert", "synonym", "contextual"]
DEFAULT_OPERATIONS: tuple[Operation, ...] = ("delete", "swap", "insert", "synonym")


class AugmentSpec(Strict):
    """Each training example gets `copies` altered copies; each copy applies one operation, drawn (seeded) from
    `operations`: delete (random words dropped), swap (word pairs swapped), insert (a word of the same text
    inserted elsewhere), synonym (WordNet synonyms; needs nlp-transfer[augment]), contextual (words re-predicted
    by a masked language model)."""

    copies: int = Field(1, ge=1, le=20, description="altered copies per training example")
    operations: list[Operation] = Field(
        default_factory=lambda: list(DEFAULT_OPERATIONS),
        min_length=1,
        description="operations a copy may apply (one per copy, chosen at random)",
    )
    rate: float = Field(0.1, gt=0, le=0.5, description="share of a text's words each operation changes (at least 1)")
    mlm_model: str | None = Field(
        None, description="contextual: the masked LM that proposes words (default: the recipe's model, if trained)"
    )
    seed: int | None = Field(None, description="default: train.seed")

    @field_validator("operations")
    @classmethod
    def _once_each(cls, value: list[Operation]) -> list[Operation]:
        return list(dict.fromkeys(value))
