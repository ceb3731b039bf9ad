"""Which run folder `run --resume` continues, whether it may, and the recipe a run folder recorded.

A run resumes only into a folder of ours that is not complete, with the recipe it started with: a changed recipe
would mix two trainings in one model, so the differences are shown and the resume refused unless --force.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import yaml

from nlp_transfer.core.damage import file_damage
from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import LoadedRecipe, load_recipe
from nlp_transfer.runfolder.folder import ENVIRONMENT_FILE, RECIPE_FILE, STATUS_FILE, read_status


def resume_target(loaded: LoadedRecipe, output_dir: Path | None) -> Path:
    """--output-dir, else output.dir, else the newest unfinished <output.root>/<recipe name>-<time> folder."""
    given = output_dir or (Path(loaded.recipe.output.dir) if loaded.recipe.output.dir else None)
    if given is not None:
        return given
    root = Path(loaded.recipe.output.root)
    candidates = sorted(root.glob(f"{loaded.name}-*"), reverse=True) if root.is_dir() else []
    unfinished = [p for p in candidates if read_status(p).get("state") not in (None, "complete")]
    if not unfinished:
        raise UserError(
            f"--resume: no unfinished run of {loaded.name} under {root}/; pass the run folder: "
            f"nlp-transfer run {loaded.path} --resume --output-dir RUN_DIR"
        )
    return unfinished[0]


def check_resumable(run_dir: Path, loaded: LoadedRecipe, force: bool) -> None:
    if not run_dir.is_dir():
        raise UserError(f"--resume: {run_dir} does not exist; there is nothing to resume (run without --resume)")
    status = read_status(run_dir)  # {} when there is none, or it is unreadable
    if "state" not in status:
        raise UserError(
            f"--resume: {run_dir} is not an nlp-transfer run folder (no {STATUS_FILE}); it is never written into"
        )
    if status["state"] == "complete":
        raise UserError(
            f"--resume: {run_dir} holds a complete run; nothing to resume (--overwrite trains it again from the start)"
        )
    if status["state"] == "running" and _alive(status.get("pid")):
        raise UserError(f"--resume: {run_dir} is still being trained by process {status['pid']}; stop it first")
    changes = recipe_changes(_read_yaml(run_dir / RECIPE_FILE), loaded.recipe.model_dump(mode="json"))
    if changes and not force:
        raise UserError(
            f"--resume: the recipe differs from the one {run_dir} started with ({'; '.join(changes)}); resuming "
            "would mix two trainings. Undo the changes, or pass --force to resume with the new recipe anyway"
        )


def recipe_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """`field: old -> new` for every leaf that differs (`output` is where the run goes, not what it trains)."""
    changes = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}{key}"
        if path == "output":
            continue
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += recipe_changes(old, new, prefix=f"{path}.")
        elif old != new:
            changes.append(f"{path}: {old!r} -> {new!r}")
    return changes


# What to do when a record a command needs is missing or damaged, by command.
RECORD_FIXES = {
    "--resume": "resume with the recipe file instead: nlp-transfer run RECIPE --resume --output-dir {run_dir}",
    "--reproduce": (
        "without it the run cannot be reproduced; train its recipe again into a new folder: nlp-transfer run "
        "{run_dir}/" + RECIPE_FILE + " --output-dir NEW_DIR"
    ),
}


def read_record(run_dir: Path, name: str, command: str) -> dict[str, Any]:
    """A JSON record of the run folder (environment.json, metrics.json) that `command` needs; a missing or damaged
    one is a one-line error saying what to do instead."""
    path = run_dir / name
    problem = file_damage(path)
    if problem is None:
        found = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(found, dict):
            return found
        problem = "is not a JSON object"
    raise UserError(f"{command}: {path} {problem}; {RECORD_FIXES[command].format(run_dir=run_dir)}")


def recorded_recipe(run_dir: Path, overrides: list[str] | None = None, command: str = "--resume") -> LoadedRecipe:
    """The recipe a run folder recorded (with `overrides`: check_resumable then lists them as changes), resolving
    relative data paths where the original recipe file was."""
    if not (run_dir / RECIPE_FILE).is_file():
        raise UserError(f"{run_dir}: no {RECIPE_FILE}; pass a run folder written by nlp-transfer run")
    loaded = load_recipe(run_dir / RECIPE_FILE, overrides)
    origin = read_record(run_dir, ENVIRONMENT_FILE, command).get("recipe", {})
    return dataclasses.replace(
        loaded,
        path=Path(origin.get("file") or run_dir / RECIPE_FILE),
        name=origin.get("name") or run_dir.name,
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"--resume: {path} is missing or unreadable; the run folder cannot be resumed") from err
    return found if isinstance(found, dict) else {}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
