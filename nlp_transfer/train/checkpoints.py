"""Checkpoints that a crash cannot corrupt, and finding the last good one to resume from.

The Trainer writes checkpoint-<step>/ file by file, so a run killed while saving leaves a half-written folder that
looks like the newest checkpoint. Here a checkpoint counts only once it is sealed: checkpoint_complete.json, written
last (through a rename), lists every file with its size and sha256. Resuming takes the newest sealed checkpoint
whose files still match (a truncated or damaged file is caught) and falls back to older ones. Rotation runs only
after a seal, and keeps the newest KEEP sealed checkpoints plus the best one (which load_best_model_at_end needs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nlp_transfer.core.files import sha256_file

SEAL_FILE = "checkpoint_complete.json"
KEEP = 2  # sealed checkpoints kept: the newest, and one to fall back to if the newest is damaged
STEP = re.compile(r"^checkpoint-(\d+)$")


def seal(checkpoint: Path) -> None:
    files = {
        path.relative_to(checkpoint).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(checkpoint.rglob("*"))
        if path.is_file() and path.name != SEAL_FILE
    }
    staging = checkpoint / f".{SEAL_FILE}.tmp"
    staging.write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf-8")
    os.replace(staging, checkpoint / SEAL_FILE)


def problem(checkpoint: Path) -> str | None:
    """Why the checkpoint cannot be resumed from, or None when it is sealed and every file matches its seal."""
    try:
        files = json.loads((checkpoint / SEAL_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return "not sealed (the save did not finish)"
    for name, expected in files.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            return f"{name} is damaged (size or sha256 differs from the seal)"
    return None


def by_step(stage_dir: Path) -> list[Path]:
    """The checkpoint-<step> folders, newest (highest step) first."""
    found = [p for p in stage_dir.iterdir() if p.is_dir() and STEP.match(p.name)] if stage_dir.is_dir() else []
    return sorted(found, key=lambda p: -int(STEP.match(p.name).group(1)))  # type: ignore[union-attr]


@dataclass
class Resumable:
    checkpoint: Path | None  # the newest usable one
    skipped: list[str]  # the newer ones that were not usable, and why


def last_usable(stage_dir: Path) -> Resumable:
    skipped: list[str] = []
    for checkpoint in by_step(stage_dir):
        why = problem(checkpoint)
        if why is None:
            return Resumable(checkpoint, skipped)
        skipped.append(f"{checkpoint.name}: {why}")
    return Resumable(None, skipped)


def rotate(stage_dir: Path, protect: Path | None) -> None:
    """Delete all but the newest KEEP sealed checkpoints (and `protect`, the best). A folder newer than the newest
    sealed one is a save in progress elsewhere and is left alone; older unsealed ones are debris of a killed save."""
    sealed = 0
    for checkpoint in by_step(stage_dir):
        is_sealed = (checkpoint / SEAL_FILE).is_file()
        if sealed == 0 and not is_sealed:
            continue
        sealed += is_sealed
        if (is_sealed and sealed <= KEEP) or (protect is not None and checkpoint.resolve() == protect.resolve()):
            continue
        shutil.rmtree(checkpoint, ignore_errors=True)
