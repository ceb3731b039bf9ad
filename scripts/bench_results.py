"""One place where every benchmark records what it measured: `results/<name>.json`.

A results file says how its numbers were made, so a reader can trace a documented number to a run:

    {"name": "bench_serve", "command": "python scripts/bench_serve.py --quick", "commit": "abc123...",
     "dirty": false, "date": "2026-12-05T21:40:00+00:00", "machine": {...}, "seeds": [0, 1, 2],
     "rows": [{...}, ...], "notes": "..."}

`rows` are plain JSON objects (one per measured configuration); their keys are the benchmark's own. The docs
renderer reads these files and nothing else, so a number that is not in a results file is not on a results page.

Scripts import it as `from bench_results import write_results` (python puts scripts/ first on sys.path when a
script in it runs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"

# CPU features that decide which kernels (and so which speeds) a run gets.
_CPU_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_facts() -> dict[str, Any]:
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "cpu_flags": [flag for flag in _CPU_FLAGS_OF_INTEREST if flag in flags],
    }


def machine_facts() -> dict[str, Any]:
    """The facts that make a speed comparable: cores, CPU features, accelerator, library versions."""
    facts: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(), **_cpu_facts()}
    for library in ("torch", "transformers", "peft", "accelerate", "onnxruntime"):
        try:
            module = __import__(library)
            facts[library] = getattr(module, "__version__", "unknown")
        except ImportError:
            continue
    try:
        import torch

        facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        facts["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return facts


def write_results(
    name: str,
    rows: Sequence[dict[str, Any]],
    *,
    seeds: Sequence[int] = (),
    notes: str = "",
    argv: Sequence[str] | None = None,
    directory: Path | None = None,
    on_page: dict[str, Any] | None = None,
) -> Path:
    """Write `results/<name>.json` (atomically) and return its path.

    `on_page` places the record on a results page of the docs (scripts/render_docs.py): `page` (a results page's
    name), `title`, `order`, and optionally `columns` (the table's columns, in order), `intro`, `notes`."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path(name)
    try:
        shown = script.resolve().relative_to(REPO_ROOT)
    except ValueError:
        shown = script
    record = {
        "name": name,
        "command": " ".join(["python", str(shown), *argv[1:]]),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "seeds": list(seeds),
        "rows": list(rows),
        "notes": notes,
        **(on_page or {}),
    }
    target_dir = directory or RESULTS_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{name}.json"
    partial = target.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target
