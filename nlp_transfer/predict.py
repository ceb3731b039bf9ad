"""Predict with a finished run folder: label and probability for each text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from transformers import AutoTokenizer

from nlp_transfer.errors import UserError
from nlp_transfer.methods import METHODS
from nlp_transfer.runfolder import require_complete
from nlp_transfer.tasks import TASKS


def read_texts(path: Path, field: str = "text") -> list[str]:
    """A .jsonl file (one object per line, text in `field`) or a plain file with one text per line."""
    if not path.is_file():
        raise UserError(f"--file {path}: not found; pass a .txt (one text per line) or .jsonl file")
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as err:
        raise UserError(f"--file {path}: not valid utf-8; convert it to utf-8") from err
    if path.suffix.lower() != ".jsonl":
        return lines
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            texts.append(str(json.loads(line)[field]))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"--file {path} line {number}: expected a JSON object with a '{field}' field") from err
    return texts


class Predictor:
    def __init__(self, run_dir: Path, batch_size: int = 32) -> None:
        require_complete(run_dir)
        recipe = yaml.safe_load((run_dir / "recipe.resolved.yaml").read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(run_dir)
        self.model = load_trained(run_dir, recipe)
        self.batch_size = batch_size
        self.max_length = int(recipe["task"]["max_length"])  # truncate as training did
        self.id2label = _config_of(self.model).id2label

    def predict(self, texts: list[str]) -> Iterator[dict[str, Any]]:
        id2label = self.id2label
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            inputs = self.tokenizer(
                batch, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            )
            with torch.inference_mode():
                probabilities = self.model(**inputs).logits.softmax(dim=-1)  # (batch, num_labels)
            for text, row in zip(batch, probabilities.tolist(), strict=True):
                best = max(range(len(row)), key=row.__getitem__)
                yield {
                    "text": text,
                    "label": id2label[best],
                    "probability": round(row[best], 6),
                    "probabilities": {id2label[i]: round(p, 6) for i, p in enumerate(row)},
                }


def load_trained(run_dir: Path, recipe: dict[str, Any]) -> nn.Module:
    """The trained model as its method saved it (plain folder, probe pooling, or LoRA adapter on its base)."""
    method = METHODS[recipe["method"]["name"]]
    model: nn.Module = method.load(run_dir, TASKS[recipe["task"]["name"]])
    return model.eval()


def _config_of(model: nn.Module) -> Any:
    """The transformers config, whatever wraps the model (a peft adapter, a probe's pooling)."""
    inner = getattr(model, "model", None)
    return getattr(model, "config", None) or getattr(inner, "config", None)
