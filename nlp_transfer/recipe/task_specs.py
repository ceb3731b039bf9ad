"""The recipe's `task:` section: one config per task, a discriminated union on `name`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from nlp_transfer.recipe.base import Strict


class ClassificationTask(Strict):
    """Single-sentence or sentence-pair classification (sentiment, topics, NLI-style pairs)."""

    metric_names: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "loss")
    main_metric: ClassVar[str] = "accuracy"  # picks the best checkpoint unless train.metric_for_best says otherwise

    name: Literal["classification"]
    text: str = Field("text", description="column holding the text")
    text_pair: str | None = Field(None, description="column holding the second text of a pair")
    label: str = Field("label", description="column holding the label (int or string)")
    labels: list[str] | None = Field(
        None,
        description="label names; for int labels 0..K-1 they name the ids, for string labels they fix the order",
    )
    max_length: int = Field(128, ge=8, le=8192, description="tokens per example after truncation")

    def default_metric_for_best(self) -> str:
        return self.main_metric

    @field_validator("labels")
    @classmethod
    def _labels_name_distinct_classes(cls, labels: list[str] | None) -> list[str] | None:
        if labels is None:
            return labels
        repeated = sorted({name for name in labels if labels.count(name) > 1})
        if repeated:
            raise ValueError(
                f"task.labels: {', '.join(repr(n) for n in repeated)} listed more than once; each class is named once "
                "(a name given twice would be two classes the model cannot tell apart)"
            )
        if len(labels) < 2:
            raise ValueError(f"task.labels: {labels!r} names one class; a classifier needs at least two")
        return labels


class QuestionAnsweringTask(Strict):
    """Extractive question answering (SQuAD-style): the answer is a span of the context."""

    metric_names: ClassVar[tuple[str, ...]] = ("exact_match", "f1", "loss")
    main_metric: ClassVar[str] = "f1"

    name: Literal["qa"]
    question: str = Field("question", description="column holding the question")
    context: str = Field("context", description="column holding the passage the answer is taken from")
    answers: str = Field(
        "answers", description="column holding the answers: {text: [...], answer_start: [...]} (character offsets)"
    )
    max_length: int = Field(384, ge=16, le=8192, description="tokens per window (question + part of the context)")
    stride: int = Field(128, ge=0, description="tokens shared by consecutive windows of a long context")
    max_answer_length: int = Field(30, gt=0, description="longest answer considered, in tokens")
    n_best: int = Field(20, gt=0, description="start and end candidates kept per window")
    unanswerable: Literal["auto", True, False] = Field(
        "auto",
        description="questions may have no answer (SQuAD v2); auto: when the training data has such questions",
    )
    null_threshold: float = Field(
        0.0, description="answer null when the no-answer score beats the best span's score by more than this"
    )

    def default_metric_for_best(self) -> str:
        return self.main_metric

    @model_validator(mode="after")
    def _stride_fits(self) -> QuestionAnsweringTask:
        if self.stride >= self.max_length // 2:
            raise ValueError(
                f"task.stride {self.stride} must be less than half of task.max_length {self.max_length} "
                "(windows overlap by stride tokens); lower task.stride or raise task.max_length"
            )
        return self


TaskSpec = Annotated[ClassificationTask | QuestionAnsweringTask, Field(discriminator="name")]
