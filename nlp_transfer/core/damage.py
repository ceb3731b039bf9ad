"""Is a model file whole? Cheap checks run before anything loads, so a damaged folder is named with the file and
what to do, instead of a SafetensorError or JSONDecodeError from deep inside a library.

A safetensors file is checked by reading its header (safe_open maps the file and checks that the header's tensors
cover it exactly): a copy or download cut short at any byte fails that check, without reading the weights.
"""

from __future__ import annotations

import json
from pathlib import Path


def file_damage(path: Path) -> str | None:
    """None when `path` looks whole; else what is wrong with it: 'is missing', 'is cut short or corrupt (...)', ..."""
    if not path.is_file():
        return "is missing"
    if path.stat().st_size == 0:
        return "is empty"
    if path.suffix == ".json":
        return _json_damage(path)
    if path.suffix == ".safetensors":
        return _safetensors_damage(path)
    return None


def _json_damage(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return "is not text (not JSON)"
    except ValueError as err:
        return f"is not valid JSON ({err})"
    return None


def _safetensors_damage(path: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt"):
            pass
    except SafetensorError as err:
        return f"is cut short or corrupt ({err})"
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    return None
