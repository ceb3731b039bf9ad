"""The recipe's `adapt:` section: the unlabelled target domain and the stages that adapt a model to it.

Stages run in a fixed order, each feeding the next: pretrain (continued language-model pre-training on the target
corpus) -> finetune (the recipe's method on the labelled source data) -> self_train (pseudo-labelled target texts
added to the source data). Any subset in that order is a recipe; finetune alone is the source-only baseline.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from nlp_transfer.recipe.base import SplitSpec, Strict


class TargetDomain(Strict):
    corpus: SplitSpec = Field(
        description="unlabelled target texts; only the `text` column is read, any label column is dropped"
    )
    test: SplitSpec | None = Field(None, description="labelled target texts, used for evaluation only")
    text: str = Field("text", description="column holding the text, in corpus and test")
    label: str = Field("label", description="column holding the label in test")
    max_corpus_samples: int | None = Field(None, gt=0, description="seeded random subset of the corpus")
    max_test_samples: int | None = Field(None, gt=0)


class PretrainStage(Strict):
    """Continued pre-training (domain-adaptive): masked LM for encoders, causal LM for GPT-2, on the target corpus
    packed into blocks. The adapted encoder is what finetune starts from."""

    name: Literal["pretrain"]
    objective: Literal["auto", "mlm", "clm"] = Field(
        "auto", description="auto: masked LM when the architecture has one (BERT, RoBERTa, ...), else causal LM"
    )
    method: Literal["full", "lora"] = Field("full", description="full: every weight trains; lora: low-rank adapters")
    lora_r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    lora_targets: list[str] | None = Field(None, description="default: the architecture's LoRA targets")
    block_size: int = Field(128, ge=16, le=8192, description="tokens per packed block")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of tokens masked (masked LM)")
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps (overrides epochs)")
    learning_rate: float = Field(5e-5, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_fraction: float = Field(0.05, gt=0, lt=1, description="blocks held out to measure the LM loss")
    checkpoint_steps: int | None = Field(
        None, gt=0, description="also save a resumable checkpoint every N steps (each epoch saves one)"
    )


class FinetuneStage(Strict):
    """Supervised training on the labelled source data with the recipe's method, data and train settings; from the
    adapted encoder when pretrain comes first."""

    name: Literal["finetune"]


class SelfTrainStage(Strict):
    """Rounds of: pseudo-label the target corpus with the current model, keep confident class-balanced texts, train
    again from the same starting weights on source + pseudo-labelled target."""

    name: Literal["self_train"]
    rounds: int = Field(2, ge=1, le=20)
    keep_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="share of the target corpus pseudo-labelled in the last round; round r of R keeps r/R of it",
    )
    balanced: bool = Field(
        True,
        description="the same number of texts per class, each class's most probable ones (the label prior "
        "shifts between domains, so the model's own argmax counts are not trusted)",
    )
    min_confidence: float = Field(0.0, ge=0, lt=1, description="drop pseudo-labels less probable than this")
    epochs: float | None = Field(None, gt=0, description="default: train.epochs")
    learning_rate: float | None = Field(None, gt=0, description="default: the finetune stage's learning rate")


StageSpec = Annotated[PretrainStage | FinetuneStage | SelfTrainStage, Field(discriminator="name")]
STAGE_ORDER = ("pretrain", "finetune", "self_train")


class AdaptSpec(Strict):
    target: TargetDomain
    stages: list[StageSpec] = Field(min_length=1, description="in order: pretrain, finetune, self_train (any subset)")

    @model_validator(mode="after")
    def _stages_in_order(self) -> AdaptSpec:
        names = [stage.name for stage in self.stages]
        for name in set(names):
            if names.count(name) > 1:
                raise ValueError(f"adapt.stages: '{name}' appears {names.count(name)} times; each stage runs once")
        for before, after in itertools.pairwise(names):
            if STAGE_ORDER.index(after) < STAGE_ORDER.index(before):
                raise ValueError(
                    f"adapt.stages: '{after}' comes after '{before}'; stages run in the order "
                    f"{' -> '.join(STAGE_ORDER)} (each feeds the next): reorder them"
                )
        if "self_train" in names and "finetune" not in names:
            raise ValueError(
                "adapt.stages: self_train pseudo-labels with a trained classifier; add {name: finetune} before it"
            )
        return self

    def stage(self, name: str) -> PretrainStage | FinetuneStage | SelfTrainStage | None:
        return next((stage for stage in self.stages if stage.name == name), None)
