"""Writing files a crash cannot leave half-written, and hashing them (checkpoint seals, data records)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


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
