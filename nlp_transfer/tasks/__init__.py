"""Tasks: what a model predicts and how data becomes model inputs. TASKS maps recipe `task.name` to a task."""

from __future__ import annotations

from nlp_transfer.tasks.base import PreparedTask, Task
from nlp_transfer.tasks.classification import Classification
from nlp_transfer.tasks.qa import QuestionAnswering

TASKS: dict[str, type[Task]] = {
    "classification": Classification,
    "qa": QuestionAnswering,
}

__all__ = ["TASKS", "PreparedTask", "Task"]
