"""The recipe's `method:` section: how much of the pre-trained model trains; a discriminated union on `name`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from nlp_transfer.recipe.base import Strict


class FullMethod(Strict):
    """Every weight trains."""

    name: Literal["full"] = Field(description="every weight trains")
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


Pooling = Literal["native", "cls", "mean", "last"]


class ProbeMethod(Strict):
    """The encoder is frozen; only the task head trains (a probe of what the pre-trained features already know)."""

    name: Literal["probe"] = Field(description="only the task head trains, on the frozen encoder")
    pooling: Pooling = Field(
        "native",
        description="how one vector is taken from the token states: native = what the model's own head uses "
        "(first token for BERT/RoBERTa/DistilBERT, last token for GPT-2), cls, mean, last",
    )
    layer: int = Field(-1, description="hidden layer whose states are pooled: -1 = last, 0 = embeddings, 1..L")
    cache_features: bool = Field(
        True, description="compute the frozen encoder's features once and train the head on them (fast)"
    )
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


class UnfreezeLastMethod(Strict):
    """Embeddings and lower layers frozen; the top `layers` encoder layers and the head train."""

    name: Literal["unfreeze_last"] = Field(description="the top N blocks and the head train")
    layers: int = Field(2, ge=1, description="how many of the top encoder layers train")
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


class LoraMethod(Strict):
    """Low-rank adapters (peft LoRA) in the attention layers; the pre-trained weights stay frozen, the head trains."""

    name: Literal["lora"] = Field(description="low-rank adapters (peft) plus the whole head")
    r: int = Field(8, gt=0, description="rank of the update matrices")
    alpha: float = Field(16, gt=0, description="scaling numerator, usually 2 x r")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the LoRA branches")
    target_modules: list[str] | None = Field(
        None, description="module names to adapt; default per architecture (BERT query/value, GPT-2 c_attn, ...)"
    )
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")
    save_merged: bool = Field(False, description="also write the merged full model to <run>/merged")


class ProbeThenFinetuneMethod(Strict):
    """Two stages: train the head on the frozen encoder (cached features), then everything with train.* settings."""

    name: Literal["probe_then_finetune"] = Field(description="the head on cached features first, then every weight")
    probe_epochs: float = Field(5, gt=0, description="epochs of the head-only stage")
    probe_learning_rate: float = Field(1e-3, gt=0, description="learning rate of the head-only stage")
    unfreeze_last: int | None = Field(
        None, ge=1, description="second stage trains only the top N layers and the head (default: every weight)"
    )


class ScratchMethod(Strict):
    """The same architecture, randomly initialised: the baseline that shows what pre-training buys."""

    name: Literal["scratch"] = Field(description="every weight, from a random initialisation of the same architecture")
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


class ContrastiveMethod(Strict):
    """Few-shot (the SetFit recipe): phase `embeddings` fine-tunes the encoder on pairs of labelled examples (same
    label pulled together, different labels pushed apart); phase `head` trains the head on the frozen embeddings."""

    name: Literal["contrastive"] = Field(
        description="few-shot (SetFit's recipe): the encoder on pairs of examples, then the head"
    )
    pairs_per_example: int = Field(
        40,
        ge=2,
        description="pairs that start at each labelled example, half with a partner of the same label and half "
        "with one of another label (SetFit's num_iterations x 2)",
    )
    loss: Literal["cosine", "contrastive"] = Field(
        "cosine",
        description="cosine: squared error between the pair's cosine similarity and its target (1 same label, "
        "0 different; SetFit's default); contrastive: pull same-label pairs together, push others past a margin",
    )
    margin: float = Field(
        0.5, gt=0, le=2, description="cosine distance other-label pairs are pushed past (loss contrastive)"
    )
    pooling: Pooling = Field(
        "mean", description="how one embedding is taken from the token states (mean: what sentence encoders use)"
    )
    normalize: bool = Field(True, description="scale each embedding to unit length before the head reads it")
    epochs: float = Field(1, gt=0, description="passes over the pairs in phase embeddings")
    learning_rate: float = Field(2e-5, gt=0, description="the encoder's learning rate in phase embeddings")
    head_epochs: float = Field(50, gt=0, description="epochs of phase head (a few dozen examples: one step each)")
    head_learning_rate: float = Field(1e-2, gt=0, description="the head's learning rate (phase head)")


MethodSpec = Annotated[
    FullMethod
    | ProbeMethod
    | UnfreezeLastMethod
    | LoraMethod
    | ProbeThenFinetuneMethod
    | ScratchMethod
    | ContrastiveMethod,
    Field(discriminator="name"),
]
