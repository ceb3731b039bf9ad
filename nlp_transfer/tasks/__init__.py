"""Tasks: what a model predicts and how data becomes model inputs. TASKS maps recipe `task.name` to a task."""

from __future__ import annotations

from nlp_transfer.tasks.base import PreparedTask, Task
from nlp_transfer.tasks.classification import Classification
from nlp_transfer.tasks.multi_label import MultiLabel
from nlp_transfer.tasks.qa import QuestionAnswering
from nlp_transfer.tasks.regression import Regression
from nlp_transfer.tasks.token_classification import TokenClassification

TASKS: dict[str, type[Task]] = {
    "classification": Classification,
    "multi_label": MultiLabel,
    "regression": Regression,
    "qa": QuestionAnswering,
    "token_classification": TokenClassification,
}

__all__ = ["TASKS", "PreparedTask", "Task"]
