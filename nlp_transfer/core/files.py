"""Writing files a crash cannot leave half-written, hashing them (checkpoint seals, data records), and checking
before any work that an output path can be written."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError


def write_atomically(target: Path, text: str) -> None:
    """Write through a temporary file beside the target and rename: a crash never leaves a half-written file."""
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, target)


def write_json_atomically(target: Path, data: Any) -> None:
    write_atomically(target, json.dumps(data, indent=2, default=str) + "\n")


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or {} when the file is missing or not a JSON object (records that may be absent)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(found) if isinstance(found, dict) else {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- output paths, checked before any work -------------------------------------------------------------------


def check_output_file(path: Path, option: str) -> None:
    """`path` can be written as a file: not a folder, and its nearest existing folder is a writable folder (missing
    folders on the way are created when it is written). Called before anything loads."""
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; name a file to write, e.g. {option} {path / 'out.jsonl'}")
    _check_writable_below(path.parent, path, option)


def check_output_folder(path: Path, option: str) -> None:
    """`path` can be made (or written into) as a folder: not a file, and its nearest existing folder is writable."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder; choose another {option}")
    _check_writable_below(path, path, option)


def write_output_file(path: Path, text: str) -> list[Path]:
    """Write through a temporary file, creating missing parent folders; returns the folders it created."""
    created = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    return created


def _check_writable_below(folder: Path, target: Path, option: str) -> None:
    existing = next(p for p in [folder, *folder.parents] if p.exists() or p.is_symlink())
    if not existing.is_dir():
        raise UserError(
            f"{option} {target} cannot be written: {existing} is a file, not a folder; choose another {option}"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(
            f"{option} {target} cannot be written ({err.strerror or type(err).__name__} in {existing}); "
            f"choose another {option}"
        ) from err
