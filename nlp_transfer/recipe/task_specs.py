"""The recipe's `task:` section: one config per task, a discriminated union on `name`.

The three text tasks (classification, multi_label, regression) share how a text becomes model inputs (TEXT_INPUTS
below: max_length, truncation, stride, head_tokens, window_pooling); each declares those fields itself, so every
task's fields read in the order a user would write them."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from nlp_transfer.recipe.base import Strict
from nlp_transfer.recipe.loss_specs import MultiLabelLoss, named_loss
from nlp_transfer.recipe.task_fields import (
    ClassWeightsField,
    HeadTokens,
    LabelsFile,
    MaxLength,
    Stride,
    TruncationField,
    WindowPooling,
    check_labels_source,
    check_text_inputs,
    none_is_none,
)


class ClassificationTask(Strict):
    """Single-sentence or sentence-pair classification (sentiment, topics, NLI-style pairs)."""

    metric_names: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "loss")
    main_metric: ClassVar[str] = "accuracy"  # picks the best checkpoint unless train.metric_for_best says otherwise
    has_classes: ClassVar[bool] = True  # data.max_train_per_class applies (rows per class)
    takes_extra_metrics: ClassVar[bool] = True  # train.extra_metrics are scored beside its own

    name: Literal["classification"] = Field(description="single texts or sentence pairs, two or more classes")
    text: str = Field("text", description="column holding the text")
    text_pair: str | None = Field(None, description="column holding the second text of a pair")
    label: str = Field("label", description="column holding the label (int or string)")
    labels: list[str] | None = Field(
        None,
        description="label names; for int labels 0..K-1 they name the ids, for string labels they fix the order",
    )
    labels_file: LabelsFile = None
    class_weights: ClassWeightsField = "none"
    max_length: MaxLength = 128
    truncation: TruncationField = "head"
    stride: Stride = 32
    head_tokens: HeadTokens = None
    window_pooling: WindowPooling = "mean"

    _none_weights = field_validator("class_weights", mode="before")(none_is_none)

    def default_metric_for_best(self) -> str:
        # With class weights the point is the rare classes: accuracy would pick the checkpoint that ignores them.
        return "macro_f1" if self.class_weights != "none" else self.main_metric

    @model_validator(mode="after")
    def _fields_agree(self) -> ClassificationTask:
        check_text_inputs(self)
        check_labels_source(self)
        if self.labels is not None and len(self.labels) < 2:
            raise ValueError(f"task.labels: {self.labels!r} names one class; a classifier needs at least two")
        return self


class MultiLabelTask(Strict):
    """Several labels per text (emotions, topics, moderation flags): one sigmoid per label, decision thresholds
    tuned on the eval split."""

    metric_names: ClassVar[tuple[str, ...]] = (
        "macro_f1",
        "micro_f1",
        "subset_accuracy",
        "macro_roc_auc",
        "macro_f1_fixed",
        "micro_f1_fixed",
        "loss",
    )
    main_metric: ClassVar[str] = "macro_f1"
    has_classes: ClassVar[bool] = True  # data.max_train_per_class applies (rows per class)
    takes_extra_metrics: ClassVar[bool] = True  # train.extra_metrics are scored beside its own

    name: Literal["multi_label"] = Field(description="several labels per text, one sigmoid per label")
    text: str = Field("text", description="column holding the text")
    text_pair: str | None = Field(None, description="column holding the second text of a pair")
    label: str | list[str] = Field(
        "labels",
        description="one column holding each text's labels (a JSON list, or a delimited string such as '3,12'), or "
        "a list of columns, one 0/1 column per label (the column names are the label names)",
    )
    labels: list[str] | None = Field(
        None, description="label names; int labels are ids into this list; default: the names found in train"
    )
    labels_file: LabelsFile = None
    label_delimiter: str = Field(",", min_length=1, description="separates the labels in a delimited string")
    allow_empty: bool = Field(True, description="a text may have no label at all (false: such a row is an error)")
    thresholds: Literal["per_label", "global", "fixed"] = Field(
        "per_label",
        description="decision thresholds: per_label (each label's own, tuned on the eval split for its F1), global "
        "(one, tuned for macro-F1), fixed (task.threshold)",
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="the fixed threshold (thresholds: fixed) and the one *_fixed metrics use"
    )
    threshold_shrinkage: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="per_label: pull each label's tuned threshold towards the one global threshold, as if k more "
        "eval positives had voted for it: (n * own + k * global) / (n + k), n the label's eval positives. Rare "
        "labels (few positives, a threshold fitted to a handful of texts) move most; 0 keeps each label's own",
    )
    loss: MultiLabelLoss = Field(
        "bce",  # a bare name, validated into {name: bce}
        validate_default=True,
        description="bce (binary cross-entropy); focal (gamma, alpha); asymmetric (ASL: gamma_neg, gamma_pos, clip). "
        "class_weights weigh each label's positive term in all three",
    )
    class_weights: ClassWeightsField = "none"
    max_length: MaxLength = 128
    truncation: TruncationField = "head"
    stride: Stride = 32
    head_tokens: HeadTokens = None
    window_pooling: WindowPooling = "mean"

    _none_weights = field_validator("class_weights", mode="before")(none_is_none)
    _named_loss = field_validator("loss", mode="before")(named_loss)

    def default_metric_for_best(self) -> str:
        return self.main_metric

    @model_validator(mode="after")
    def _fields_agree(self) -> MultiLabelTask:
        check_text_inputs(self)
        check_labels_source(self)
        if self.threshold_shrinkage > 0 and self.thresholds != "per_label":
            raise ValueError(
                f"task.threshold_shrinkage pulls per-label thresholds towards a global one; with thresholds "
                f"{self.thresholds} there are none to pull: remove it or set task.thresholds: per_label"
            )
        if isinstance(self.label, list):
            if not self.label:
                raise ValueError("task.label: an empty list; name the label column, or one 0/1 column per label")
            if self.labels is not None or self.labels_file is not None:
                raise ValueError(
                    "task.label lists one 0/1 column per label, and the column names are the label names; remove "
                    "task.labels / task.labels_file"
                )
            if len(set(self.label)) != len(self.label):
                raise ValueError("task.label names a column more than once; list each label column once")
        return self


class RegressionTask(Strict):
    """Numbers from text (ratings, scores; several targets at once, e.g. valence, arousal, dominance)."""

    metric_names: ClassVar[tuple[str, ...]] = ("pearson", "spearman", "r2", "mse", "mae", "loss")
    main_metric: ClassVar[str] = "pearson"  # the mean over targets when there are several
    has_classes: ClassVar[bool] = False  # data.max_train_per_class applies (rows per class)
    takes_extra_metrics: ClassVar[bool] = True  # train.extra_metrics are scored beside its own

    name: Literal["regression"] = Field(description="one number or several per text")
    text: str = Field("text", description="column holding the text")
    text_pair: str | None = Field(None, description="column holding the second text of a pair")
    label: str | list[str] = Field(
        "label", description="column holding the numeric target, or a list of columns (one model, one output each)"
    )
    standardize: bool = Field(
        True,
        description="train on (target - mean) / std of the training targets; the scale is stored in the model's "
        "config and undone at predict time",
    )
    max_length: MaxLength = 128
    truncation: TruncationField = "head"
    stride: Stride = 32
    head_tokens: HeadTokens = None
    window_pooling: WindowPooling = "mean"

    def default_metric_for_best(self) -> str:
        return self.main_metric

    @model_validator(mode="after")
    def _fields_agree(self) -> RegressionTask:
        check_text_inputs(self)
        if isinstance(self.label, list) and (not self.label or len(set(self.label)) != len(self.label)):
            raise ValueError("task.label: list each target column once (at least one)")
        return self


class QuestionAnsweringTask(Strict):
    """Extractive question answering (SQuAD-style): the answer is a span of the context."""

    metric_names: ClassVar[tuple[str, ...]] = ("exact_match", "f1", "loss")
    main_metric: ClassVar[str] = "f1"
    has_classes: ClassVar[bool] = False  # data.max_train_per_class applies (rows per class)
    takes_extra_metrics: ClassVar[bool] = False  # train.extra_metrics are scored beside its own

    name: Literal["qa"] = Field(description="extractive question answering (SQuAD v1.1 and v2)")
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


TagScheme = Literal["auto", "iob1", "iob2", "bioes", "none"]


class TokenClassificationTask(Strict):
    """A tag per word: named entities (PER, ORG, ...), chunks, part-of-speech. Words come pre-split (a CoNLL column
    file, or JSONL token and tag lists) or as a text with character-offset entity spans, converted to tags on load."""

    metric_names: ClassVar[tuple[str, ...]] = ("f1", "precision", "recall", "macro_f1", "accuracy", "loss")
    main_metric: ClassVar[str] = "f1"  # entity-level micro F1 (seqeval, strict IOB2)
    has_classes: ClassVar[bool] = False  # data.max_train_per_class applies (rows per class)
    takes_extra_metrics: ClassVar[bool] = False  # train.extra_metrics are scored beside its own

    name: Literal["token_classification"] = Field(description="a tag per word: named entities, chunks, part-of-speech")
    tokens: str = Field("tokens", description="column holding each sentence's words (a list of strings)")
    tags: str = Field(
        "tags",
        description="column holding one tag per word (a list); in a CoNLL file the last column is 'tags' and every "
        "column after the words is also named column_1, column_2, ... (CoNLL-2003's POS tags: column_1)",
    )
    text: str | None = Field(
        None,
        description="span format instead of tokens and tags: the column holding the text; task.entities holds its "
        "[start, end, type] character spans, converted to IOB2 tags of the text's words",
    )
    entities: str = Field("entities", description="span format: column holding [start, end, type] character spans")
    labels: list[str] | None = Field(
        None,
        description="entity types (PER, ORG, ...) or full tags (O, B-PER, I-PER, ...) in the order the model's "
        "outputs take; default: the types found in train, sorted",
    )
    tag_scheme: TagScheme = Field(
        "auto",
        description="how the data's tags mark entities: iob1, iob2 (BIO), bioes (BILOU too), none (plain tags such "
        "as part-of-speech: no entities); auto detects it. Entity tags are normalised to IOB2",
    )
    label_all_subwords: bool = Field(
        False,
        description="label every sub-word of a word (B- becomes I- after the first), not only the first; the rest "
        "are ignored by the loss either way at prediction time",
    )
    max_length: MaxLength = 128
    stride: int = Field(
        16, ge=0, description="a sentence longer than max_length: tokens shared by its consecutive windows"
    )

    def default_metric_for_best(self) -> str:
        return "accuracy" if self.tag_scheme == "none" else self.main_metric

    @model_validator(mode="after")
    def _fields_agree(self) -> TokenClassificationTask:
        _check_labels_source_list(self.labels)
        if self.stride >= self.max_length // 2:
            raise ValueError(
                f"task.stride {self.stride} must be less than half of task.max_length {self.max_length} (windows "
                "overlap by stride tokens); lower task.stride or raise task.max_length"
            )
        return self


def _check_labels_source_list(labels: list[str] | None) -> None:
    if labels is not None and len(set(labels)) != len(labels):
        repeated = sorted({name for name in labels if labels.count(name) > 1})
        raise ValueError(f"task.labels names {', '.join(map(repr, repeated))} more than once; each label once")
    if labels is not None and not labels:
        raise ValueError("task.labels: an empty list; name the entity types (or tags), or leave it out")


TaskSpec = Annotated[
    ClassificationTask | MultiLabelTask | RegressionTask | QuestionAnsweringTask | TokenClassificationTask,
    Field(discriminator="name"),
]
TextTaskSpec = ClassificationTask | MultiLabelTask | RegressionTask
