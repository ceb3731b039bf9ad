"""What a model card says about its task: a sentence on what the model does, and a section on its outputs, each
the task's own (the Task protocol's card_summary and card_outputs), read from the model folder's own files like the
rest of the card."""

from __future__ import annotations

from pathlib import Path

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.recipe import Recipe
from nlp_transfer.runfolder.folder import BASE_CONFIG_FILE, TASK_FILE, THRESHOLDS_FILE, label_names
from nlp_transfer.tasks import TASKS
from nlp_transfer.tasks.results import CardFacts


def task_card_parts(recipe: Recipe, folder: Path) -> tuple[str, list[str]]:
    """(what the model does, the lines of its outputs section) for the card of the model in `folder`."""
    task = TASKS[recipe.task.name]
    facts = CardFacts(
        task=recipe.task,
        label_names=label_names(folder),
        resolved=read_json_or_empty(folder / TASK_FILE),
        thresholds=read_json_or_empty(folder / THRESHOLDS_FILE),
        model_config=read_json_or_empty(folder / "config.json") or read_json_or_empty(folder / BASE_CONFIG_FILE),
    )
    return task.results.card_summary(facts), task.results.card_outputs(facts)
