"""Tasks: what a model predicts and how data becomes model inputs. TASKS maps recipe `task.name` to a task."""

from __future__ import annotations

from nlp_transfer.tasks.base import PreparedTask, Task
from nlp_transfer.tasks.classification import Classification

TASKS: dict[str, type[Task]] = {
    "classification": Classification,
}

__all__ = ["TASKS", "PreparedTask", "Task"]
