"""The Task protocol: a task says what it needs; the pipeline and the methods ask it instead of checking names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from nlp_transfer.data.loading import LoadedData
from nlp_transfer.tasks.input_kinds import InputKind
from nlp_transfer.tasks.predictions import Decoder, ModelFacts
from nlp_transfer.tasks.results import TaskResults

# (logits (B, K), labels of the batch) -> the mean loss of the batch
LossOnLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class PreparedTask:
    splits: datasets.DatasetDict  # tokenized model inputs plus "labels"
    model_kwargs: dict[str, Any]  # passed to from_pretrained (e.g. num_labels, id2label, label2id)
    label_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # counted skips and other things the user should know
    cache_hits: dict[str, bool] = field(default_factory=dict)  # split -> tokenization came from the cache
    keys: dict[str, str] = field(default_factory=dict)  # split -> key of the tokenized rows (equal keys: equal rows)
    # Metrics of one evaluation, batch by batch (no task keeps every logit of a large eval set in memory): given
    # the split evaluated, a compute_metrics(EvalPrediction, compute_result) that returns the metrics when
    # compute_result is True. What it saw (predictions, answers) is what the report's views draw.
    batch_metrics_for: Callable[[datasets.Dataset], Callable[..., dict[str, float]]] | None = None
    # What the task decided from the data rather than the recipe (QA: whether "no answer" is allowed). The recipe is
    # frozen; these values are saved beside it in the run folder (task.json), where predict and the card read them.
    resolved: dict[str, Any] = field(default_factory=dict)
    # The task's own loss on the model's logits (class weights, multi-label's per-label sigmoid, regression's mean
    # squared error); None: the model's own loss. Every method trains with it (probes on cached features too).
    loss: LossOnLogits | None = None
    # Attributes written into the model's config (config.json), for anything that loads the model: the regression
    # targets' scale, undone at predict time.
    config_attributes: dict[str, Any] = field(default_factory=dict)
    # Decisions tuned on the eval split (multi-label thresholds): called once the final model has been evaluated on
    # the eval split; fixes them for the test evaluation and returns what the run folder keeps (runfolder.folder).
    settle: Callable[[], dict[str, Any]] | None = None
    # evaluate-library metrics computed beside the task's own (train.extra_metrics); the run fills this list in.
    extra_metrics: list[Any] = field(default_factory=list)
    # How batches are padded, given the tokenizer and the multiple of tokens each batch's length is rounded up to
    # (token classification pads its per-token labels too); None: the token ids padded per batch
    # (DataCollatorWithPadding). A method's own collator (probe features) comes first.
    collator: Callable[[PreTrainedTokenizerBase, int | None], Any] | None = None


class Task(Protocol):
    """Everything a task means, in one place: its schema class names it in the recipe, its module implements this,
    and TASKS (tasks/__init__.py) is the one table. The run and share rooms loop over these members and never ask
    for a task by name; tests/unit/test_task_protocol.py checks that every task provides every one."""

    auto_model_class: ClassVar[Any]  # transformers Auto class with the task's head
    peft_task_type: ClassVar[str]  # peft TaskType name: keeps the head trainable and saved
    pipeline_tag: ClassVar[str]  # Hub pipeline tag for model cards
    pooled_features: ClassVar[bool]  # one pooled vector per example decides the output (probes can cache it)
    predict_example: ClassVar[str]  # arguments of `nlp-transfer predict RUN_DIR ...`, for the end-of-run summary
    padding_side: ClassVar[str | None]  # the side the tokenizer must pad on (None: its own); set when it loads

    def __init__(self, config: Any) -> None: ...

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        """Check columns and labels, then tokenize every split (through the tokenization cache)."""
        ...

    # What a finished model says about the task (its baseline, view, usage example and card lines): a module that
    # implements results.TaskResults on plain data; the run room draws, writes and places what it returns.
    results: ClassVar[TaskResults]
    inputs: ClassVar[InputKind]  # what its model reads and returns (input_kinds.py); export checks it on samples
    corrects_label_prior: ClassVar[bool]  # an adapted model's label prior (label_prior.json) shifts its logits
    does: ClassVar[str]  # what its model does with texts, for messages ("classifies", "labels", "scores", ...)

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        """How a batch of the model's outputs (by its kind of input) becomes prediction rows; reads what it needs
        about the model first (a UserError before any prediction when the folder lacks it)."""
        ...
