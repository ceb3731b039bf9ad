"""The recipe's `adapt:` section: the unlabelled target domain and the stages that adapt a model to it.

Stages run in a fixed order, each feeding the next: pretrain (continued language-model pre-training on the target
corpus) -> finetune (the recipe's method on the labelled source data) -> self_train (pseudo-labelled target texts
added to the source data). Any subset in that order is a recipe; finetune alone is the source-only baseline.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

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
    max_test_samples: int | None = Field(None, gt=0, description="seeded random subset of the target test set")


class PretrainStage(Strict):
    """Continued pre-training (domain-adaptive): masked LM for encoders, causal LM for GPT-2, on the target corpus
    packed into blocks. The adapted encoder is what finetune starts from."""

    name: Literal["pretrain"] = Field(description="continued pre-training on the target corpus")
    objective: Literal["auto", "mlm", "clm"] = Field(
        "auto", description="auto: masked LM when the architecture has one (BERT, RoBERTa, ...), else causal LM"
    )
    method: Literal["full", "lora"] = Field("full", description="full: every weight trains; lora: low-rank adapters")
    lora_r: int = Field(8, gt=0, description="LoRA rank when method is lora")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling alpha when method is lora")
    lora_targets: list[str] | None = Field(None, description="default: the architecture's LoRA targets")
    block_size: int = Field(128, ge=16, le=8192, description="tokens per packed block")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of tokens masked (masked LM)")
    epochs: float = Field(1.0, gt=0, description="passes over the packed corpus")
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps (overrides epochs)")
    learning_rate: float = Field(5e-5, gt=0, description="learning rate of continued pre-training")
    batch_size: int = Field(32, gt=0, description="blocks per optimizer step")
    eval_fraction: float = Field(0.05, gt=0, lt=1, description="blocks held out to measure the LM loss")
    checkpoint_steps: int | None = Field(
        None, gt=0, description="also save a resumable checkpoint every N steps (each epoch saves one)"
    )


class FinetuneStage(Strict):
    """Supervised training on the labelled source data with the recipe's method, data and train settings; from the
    adapted encoder when pretrain comes first."""

    name: Literal["finetune"] = Field(description="the recipe's method on the labelled source data")


class SelfTrainStage(Strict):
    """Rounds of: pseudo-label the target corpus with the current model, keep its most probable texts of each class
    (as many per class, or in proportions: see below), train again from the same starting weights on source +
    pseudo-labelled target."""

    name: Literal["self_train"] = Field(description="rounds of pseudo-labelling the target corpus and training again")
    rounds: int = Field(2, ge=1, le=20, description="pseudo-labelling rounds")
    keep_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="share of the target corpus pseudo-labelled in the last round; round r of R keeps r/R of it",
    )
    # Default uniform, measured: on skewed Amazon targets (books 70% positive, dvd 30%) the prior estimated from a
    # movie-review model missed the truth by 17-26 points, and estimated proportions trailed uniform ones by 1.6
    # (books70, 2 seeds) and 3.8 points (dvd30) of target accuracy (README, Domain adaptation). Where label shift
    # holds (movie snippets 70% positive, 3 seeds) estimated beat uniform by 3.2 points; label_shift.shift_test keeps
    # an estimate from being used where the texts show it does not hold.
    proportions: Literal["estimated", "uniform", "predicted"] = Field(
        "uniform",
        description="how many pseudo-labels each class gets: uniform = the same number per class; estimated = the "
        "target prior estimated from the round's teacher without labels (adapt.label_shift), each class its most "
        "probable texts (uniform, with a warning, when adapt.label_shift.shift_test rejects the estimate); "
        "predicted = the teacher's argmax, most confident first (carries its prior over)",
    )
    min_confidence: float = Field(0.0, ge=0, lt=1, description="drop pseudo-labels less probable than this")
    epochs: float | None = Field(None, gt=0, description="default: train.epochs")
    learning_rate: float | None = Field(None, gt=0, description="default: the finetune stage's learning rate")

    @model_validator(mode="before")
    @classmethod
    def _balanced_is_a_proportion(cls, data: Any) -> Any:
        """Recipes written before `proportions` said balanced: true (uniform) or false (predicted)."""
        if isinstance(data, dict) and "balanced" in data and "proportions" not in data:
            balanced = data["balanced"]
            data = {k: v for k, v in data.items() if k != "balanced"}
            data["proportions"] = {True: "uniform", False: "predicted"}.get(balanced, balanced)
        return data


class PriorCorrectionStage(Strict):
    """The previous stage's classifier, corrected for the target's class prior estimated without labels
    (adapt.label_shift): its folder records the correction (label_prior.json), which predict, evaluate and export
    apply."""

    name: Literal["prior_correction"] = Field(
        description="the previous classifier corrected for the estimated target prior"
    )


class LabelShiftSpec(Strict):
    """How the target's class prior is estimated from the unlabelled corpus (studies/adapt/label_shift.py)."""

    estimator: Literal["em", "bbse"] = Field(
        "em",
        description="em: Saerens et al. 2002 on calibrated posteriors; bbse: Lipton et al. 2018 from the source "
        "confusion matrix. The other is always computed too, as a cross-check in the adapt table",
    )
    calibration: Literal["bcts", "temperature", "none"] = Field(
        "bcts",
        description="fitted on the source eval split before estimating: bcts = temperature and a per-class bias "
        "(Alexandari et al. 2020), temperature = temperature only, none = the model's own probabilities",
    )
    max_iterations: int = Field(1000, ge=1, description="EM iterations before it counts as not converged")
    tolerance: float = Field(1e-6, gt=0, description="EM stops when no class share moves more than this")
    min_corpus_texts: int = Field(100, ge=1, description="a smaller corpus is refused as too small to estimate from")
    min_share: float = Field(
        0.005, ge=0, lt=1, description="an estimated class share below this is degenerate: refused, not used"
    )
    shift_test: Literal["require", "report", "off"] = Field(
        "require",
        description="label shift (the classes look alike on both domains) is what every estimate assumes; a "
        "word-level classifier that tells target from source texts better than label shift allows rejects it "
        "(studies/adapt/shift_test.py). require: a rejected estimate is reported but not used (prior_correction "
        "leaves the classifier as it is, proportions: estimated takes uniform ones), with a warning; report: used "
        "anyway, with the warning; off: not tested",
    )
    warn_difference: float = Field(
        0.1,
        gt=0,
        le=1,
        description="the adapt table warns when the estimated prior and the predicted shares (or the two "
        "estimators) differ by more than this in some class",
    )


StageSpec = Annotated[
    PretrainStage | FinetuneStage | SelfTrainStage | PriorCorrectionStage, Field(discriminator="name")
]
STAGE_ORDER = ("pretrain", "finetune", "self_train", "prior_correction")


class AdaptSpec(Strict):
    target: TargetDomain = Field(description="where the unlabelled target texts (and its labelled test set) are")
    stages: list[StageSpec] = Field(
        min_length=1, description="in order: pretrain, finetune, self_train, prior_correction (any subset)"
    )
    label_shift: LabelShiftSpec = Field(
        default_factory=LabelShiftSpec, description="estimating the target's class prior without labels"
    )

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
        for needs_classifier in ("self_train", "prior_correction"):
            if needs_classifier in names and "finetune" not in names:
                raise ValueError(
                    f"adapt.stages: {needs_classifier} starts from a trained classifier; add {{name: finetune}} "
                    "before it"
                )
        return self

    def stage(self, name: str) -> PretrainStage | FinetuneStage | SelfTrainStage | PriorCorrectionStage | None:
        return next((stage for stage in self.stages if stage.name == name), None)
