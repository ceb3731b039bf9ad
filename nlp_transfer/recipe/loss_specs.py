"""The multi-label task's `loss:` (task.loss): one sigmoid per label, trained with plain binary cross-entropy, focal
loss or the asymmetric loss. A discriminated union on `name`, like task and method; a bare name (`loss: focal`,
`-o task.loss=focal`) means that loss with its defaults."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from nlp_transfer.recipe.base import Strict

Focusing = Annotated[float, Field(ge=0, le=10)]  # beyond ~5 the loss of anything but the worst-scored texts vanishes


class BinaryCrossEntropyLoss(Strict):
    """Today's loss: binary cross-entropy per label (class_weights weigh each label's positive term)."""

    name: Literal["bce"] = Field("bce", description="binary cross-entropy, one sigmoid per label")


class FocalLoss(Strict):
    """Focal loss (Lin et al. 2017) per label: each term scaled by (1 - p_t)^gamma, so the many easy negatives of
    rare labels stop drowning the few positives; alpha, when given, weighs positives alpha and negatives 1 - alpha."""

    name: Literal["focal"] = Field(description="focal loss: (1 - p_t)^gamma times the cross-entropy")
    gamma: Focusing = Field(2.0, description="focusing: 0 is binary cross-entropy, 2 the paper's choice")
    alpha: float | None = Field(
        None, gt=0, lt=1, description="weight of the positive term (negatives 1 - alpha); default: none"
    )


class AsymmetricLoss(Strict):
    """Asymmetric loss, ASL (Ridnik et al. 2021): positives and negatives focused apart, and negatives scored below
    `clip` (p - clip <= 0) dropped altogether, which also discards negatives that are probably mislabelled."""

    name: Literal["asymmetric"] = Field(description="asymmetric loss (ASL): negatives focused harder than positives")
    gamma_neg: Focusing = Field(4.0, description="focusing of the negative term (the paper: 4)")
    gamma_pos: Focusing = Field(0.0, description="focusing of the positive term (the paper: 0)")
    clip: float = Field(
        0.05, ge=0, lt=0.5, description="probability margin: a negative's p is shifted down by clip (the paper: 0.05)"
    )

    @model_validator(mode="after")
    def _asymmetric(self) -> AsymmetricLoss:
        if self.gamma_pos > self.gamma_neg:
            raise ValueError(
                f"task.loss.gamma_pos {self.gamma_pos:g} is above gamma_neg {self.gamma_neg:g}: ASL focuses the many "
                "negatives harder than the few positives; lower gamma_pos or raise gamma_neg"
            )
        return self


def named_loss(cls: type, value: Any) -> Any:
    """`loss: focal` -> `{name: focal}`: the loss with its defaults."""
    return {"name": value} if isinstance(value, str) else value


MultiLabelLoss = Annotated[BinaryCrossEntropyLoss | FocalLoss | AsymmetricLoss, Field(discriminator="name")]
