"""What a task's model reads and returns, by the kind of input: texts (classification, multi-label, regression: one
text or a pair -> logits), questions (QA: question and passage -> start and end logits) or words (token
classification: a sentence's words -> logits per token; token_classification.samples.WORDS). A task names its kind
(Task.inputs); a converted model (export --merge, --onnx, --quantize) is checked on the kind's sample inputs, tokenized
as in training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Inputs for the export checks: short and long, plain and odd. The tests compare on real data as well.
SAMPLE_TEXTS = [
    "a gripping, beautifully acted film",
    "the battery died after two days and support never answered",
    "It's fine.",
    "Stocks fell sharply on Tuesday as investors weighed new inflation figures from the central bank.",
    "What is the capital of France?",
    "ok " * 200,
]
SAMPLE_PAIRS = [
    ("Who directed it?", "The film was directed by Jane Campion and shot in New Zealand over three months."),
    ("When did stocks fall?", "Stocks fell sharply on Tuesday as investors weighed new inflation figures."),
]


def text_samples(tokenizer: Any, max_length: int) -> Any:
    return tokenizer(SAMPLE_TEXTS, truncation=True, max_length=max_length, padding=True, return_tensors="pt")


def question_samples(tokenizer: Any, max_length: int) -> Any:
    questions, contexts = zip(*SAMPLE_PAIRS, strict=True)
    return tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


@dataclass(frozen=True)
class InputKind:
    name: str  # texts, questions or words
    output_names: tuple[str, ...]  # the model output's tensors that carry the prediction
    samples: Callable[[Any, int], Any]  # (tokenizer, max_length) -> a padded batch of sample inputs, as in training
    # The same sample inputs as rows a predictor reads (`predict --file`'s rows): an int8 export's agreement with its
    # float model falls back to them when the run's eval file is not here (use/agreement.py).
    sample_rows: tuple[dict[str, str], ...]


TEXT_ROWS = tuple({"text": text} for text in SAMPLE_TEXTS)
TEXTS = InputKind("texts", ("logits",), text_samples, TEXT_ROWS)
QUESTIONS = InputKind(
    "questions",
    ("start_logits", "end_logits"),
    question_samples,
    tuple({"question": q, "context": c} for q, c in SAMPLE_PAIRS),
)
