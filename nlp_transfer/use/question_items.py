"""The input side of the QA predictor: a question and its context per input, from the command line or a --file, and
the check that the question leaves room for the context in the model's windows."""

from __future__ import annotations

from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.tasks import spans
from nlp_transfer.use.inputs import Item, PredictInputs, Role


class QuestionItems:
    def __init__(self, task: dict[str, Any], tokenizer: Any) -> None:
        self.task = task
        self.tokenizer = tokenizer

    def roles(self, given: PredictInputs) -> dict[str, Role]:
        if given.text_column is not None or given.text_pairs:
            raise UserError("predict: --text/--text-pair are for classification; a QA --file needs question, context")
        return {
            "question": Role(self.task["question"], "(the model's task.question)"),
            "context": Role(self.task["context"], "(the model's task.context)"),
        }

    def from_arguments(self, given: PredictInputs) -> list[Item]:
        if given.tokens or given.aggregation != "first":
            raise UserError(
                "predict: --tokens/--aggregation are for token-classification runs; this run answers questions"
            )
        if given.texts:
            raise UserError('predict: this run answers questions; use --question "..." --context "..." or --file')
        if (given.question is None) != (given.context is None):
            raise UserError("predict: give both --question and --context")
        if given.question is None and given.file is None:
            raise UserError('predict: give --question "..." --context "..." or --file PAIRS.jsonl')
        return [] if given.question is None else [{"question": given.question, "context": given.context}]

    def check(self, item: Item, where: str) -> None:
        if not item["question"].strip() or not item["context"].strip():
            raise UserError(f"predict: {where}: the question and the context must not be empty")
        length = spans.question_lengths(self.tokenizer, [item["question"].lstrip()])[0]
        if spans.context_room(self.tokenizer, length, self.task["max_length"]) <= self.task["stride"]:
            raise UserError(
                f"predict: {where}: the question ({length} tokens) leaves no room for the context in the "
                f"{self.task['max_length']}-token windows this model was trained with; shorten the question"
            )

    def length(self, item: Item) -> int:
        return len(item["question"]) + len(item["context"])
