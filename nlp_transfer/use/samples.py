"""Sample inputs for checking a converted model against the one it came from (export --merge, export --onnx), and
how close the outputs must be."""

from __future__ import annotations

from typing import Any

import torch

from nlp_transfer.use.token_predictor import sample_word_inputs

MAX_LOGIT_DIFFERENCE = 1e-3  # merged vs adapter, ONNX vs PyTorch: float32 rounding is ~1e-6; more is a bug

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


def sample_inputs(tokenizer: Any, recipe: dict[str, Any]) -> Any:
    """SAMPLE texts (or question/context pairs) tokenized as in training, padded into one batch."""
    task = recipe["task"]
    if task["name"] == "qa":
        questions, contexts = zip(*SAMPLE_PAIRS, strict=True)
        return tokenizer(
            list(questions),
            list(contexts),
            truncation="only_second",
            max_length=task["max_length"],
            padding=True,
            return_tensors="pt",
        )
    if task["name"] == "token_classification":
        return sample_word_inputs(tokenizer, SAMPLE_TEXTS, task["max_length"])
    return tokenizer(SAMPLE_TEXTS, truncation=True, max_length=task["max_length"], padding=True, return_tensors="pt")


def sample_outputs(model: Any, tokenizer: Any, recipe: dict[str, Any]) -> list[torch.Tensor]:
    """The model's output tensors (logits, or start and end logits) on the sample inputs."""
    with torch.inference_mode():
        output = model(**sample_inputs(tokenizer, recipe))
    names = ("start_logits", "end_logits") if recipe["task"]["name"] == "qa" else ("logits",)
    return [getattr(output, name).float() for name in names]


def max_difference(expected: list[torch.Tensor], found: list[torch.Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(expected, found, strict=True))
