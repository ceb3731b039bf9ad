"""Field types and cross-field rules the task specs share (task_specs.py): how a text becomes model inputs
(max_length, truncation, stride, head_tokens, window_pooling), class weights, label files, and which metrics are
better lower."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

# Metrics for which lower is better: checkpoint selection, diagnostics, `compare` and `tune` read them the other
# way round. The one definition: ask lower_is_better, never compare a metric name with "loss".
LOWER_IS_BETTER = frozenset({"loss", "mse", "mae"})


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of this metric (as recipes name it: loss, mse, accuracy, ...) is the better one."""
    return metric in LOWER_IS_BETTER


Truncation = Literal["head", "tail", "head_tail", "windows"]
ClassWeights = Literal["none", "balanced"] | list[Annotated[float, Field(gt=0)]]

TRUNCATION_HELP = (
    "a text longer than max_length: head keeps its start, tail its end, head_tail both ends (head_tokens from the "
    "start, the rest from the end), windows reads all of it in overlapping windows (each trains with the text's "
    "label; evaluation and predict pool the windows' outputs per text)"
)
MaxLength = Annotated[int, Field(ge=8, le=8192, description="tokens per example (per window) after truncation")]
TruncationField = Annotated[Truncation, Field(description=TRUNCATION_HELP)]
Stride = Annotated[int, Field(ge=0, description="windows: tokens shared by consecutive windows of a long text")]
HeadTokens = Annotated[
    int | None,
    Field(
        gt=0,
        description="head_tail: tokens kept from the start (default a quarter of the window, the split Sun et al. "
        "2019 found best); the rest come from the end",
    ),
]
WindowPooling = Annotated[
    Literal["mean", "max"], Field(description="windows: how a text's window outputs (logits) become one")
]
ClassWeightsField = Annotated[
    ClassWeights,
    Field(
        description="none; balanced (rarer classes weigh more, from the training counts); or one weight per class "
        "in label order. Single-label: weighted cross-entropy; multi-label: per-label positive weights"
    ),
]
LabelsFile = Annotated[
    str | None,
    Field(
        description="file of label names, one per line (id order) or 'id<TAB>name' lines (GoEmotions' emotions.txt, "
        "TweetEval's mapping.txt); a path or a name under the data root. Instead of labels"
    ),
]


def check_text_inputs(task: Any) -> None:
    """Cross-field rules of the text-input fields, shared by the text tasks' validators."""
    if task.truncation == "windows" and task.stride >= task.max_length // 2:
        raise ValueError(
            f"task.stride {task.stride} must be less than half of task.max_length {task.max_length} (windows overlap "
            "by stride tokens); lower task.stride or raise task.max_length"
        )
    if task.truncation in ("tail", "head_tail") and task.text_pair is not None:
        raise ValueError(
            f"task.truncation {task.truncation} keeps the end of one text; with task.text_pair use head or windows"
        )
    if task.head_tokens is not None and task.truncation != "head_tail":
        raise ValueError("task.head_tokens is for truncation head_tail; remove it or set task.truncation: head_tail")
    if task.head_tokens is not None and task.head_tokens >= task.max_length - 4:
        raise ValueError(
            f"task.head_tokens {task.head_tokens} leaves no room for the end of the text within task.max_length "
            f"{task.max_length}; lower it"
        )


def none_is_none(cls: type, value: Any) -> Any:
    return "none" if value is None or value is False else value  # YAML `null` / `no` mean no weights


def check_labels_source(task: Any) -> None:
    if task.labels is not None and task.labels_file is not None:
        raise ValueError("task.labels and task.labels_file both name the labels; keep one")
    if task.labels is not None and len(set(task.labels)) != len(task.labels):
        repeated = sorted({name for name in task.labels if task.labels.count(name) > 1})
        raise ValueError(
            f"task.labels names {', '.join(map(repr, repeated))} more than once; each label once (a name given twice "
            "would be two classes the model cannot tell apart)"
        )
