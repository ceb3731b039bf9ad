"""The input side shared by the text tasks' predictors (classification, multi_label, regression): which --file
columns they read, the texts given on the command line, and a text (or text pair) as one item. Each predictor holds
one and adds only its own batch -> rows."""

from __future__ import annotations

from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.use.inputs import Item, PredictInputs, Role


class TextItems:
    def __init__(self, task: dict[str, Any], does: str) -> None:
        self.task = task
        self.does = does  # what the model does with texts, for messages: "classifies", "labels", "scores"
        self.pairs = bool(task.get("text_pair"))  # a sentence-pair model reads two texts

    def roles(self, given: PredictInputs) -> dict[str, Role]:
        if len(given.text_pairs) > 1:
            raise UserError("predict --file: give --text-pair once, naming the file's column of second texts")
        found = {"text": Role(given.text_column or self.task["text"], "--text", given.text_column is not None)}
        if self.pairs:
            chosen = given.text_pairs[0] if given.text_pairs else None
            found["text_pair"] = Role(chosen or self.task["text_pair"], "--text-pair", chosen is not None)
        elif given.text_pairs:
            raise UserError(f"predict: --text-pair is for sentence-pair models; this model {self.does} single texts")
        return found

    def from_arguments(self, given: PredictInputs) -> list[Item]:
        if given.tokens or given.aggregation != "first":
            raise UserError(
                f"predict: --tokens/--aggregation are for token-classification runs; this model {self.does} texts"
            )
        if given.question is not None or given.context is not None:
            raise UserError(
                f"predict: --question/--context are for question answering runs; this run {self.does} texts"
            )
        if not given.texts:
            if given.file is None:
                raise UserError("predict: give texts as arguments or --file FILE")
            return []
        if given.text_column is not None and given.file is None:
            raise UserError("predict: --text names the text column of a --file; give texts as arguments without it")
        if self.pairs and given.file is not None:
            raise UserError(
                f"predict: this model {self.does} text pairs: give texts with --text-pair on the command line, or a "
                "--file with both columns, not both"
            )
        if given.text_pairs and not self.pairs:
            raise UserError(f"predict: --text-pair is for sentence-pair models; this model {self.does} single texts")
        if not self.pairs:
            return [{"text": text} for text in given.texts]
        if len(given.text_pairs) != len(given.texts):
            raise UserError(
                f"predict: this model {self.does} text pairs ({self.task['text']}, {self.task['text_pair']}); give "
                f"each text's second text with --text-pair ({len(given.texts)} texts, {len(given.text_pairs)} "
                "--text-pair)"
            )
        return [{"text": a, "text_pair": b} for a, b in zip(given.texts, given.text_pairs, strict=True)]

    def check(self, item: Item, where: str) -> None:
        return None  # any text can be predicted (an empty one too: every input keeps its output row)

    def length(self, item: Item) -> int:
        return len(item["text"]) + len(item.get("text_pair", ""))

    def texts(self, batch: list[Item]) -> tuple[list[str], list[str] | None]:
        """The batch's texts and (pair models) second texts."""
        return [item["text"] for item in batch], [item["text_pair"] for item in batch] if self.pairs else None

    def echo(self, item: Item) -> dict[str, Any]:
        """The input as it starts its output row."""
        return {"text": item["text"], **({"text_pair": item["text_pair"]} if self.pairs else {})}
