"""What one run gives back to its caller (the CLI's summary, a study's table): the folder, its metrics, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    predict_example: str = '"your text here"'  # arguments of `nlp-transfer predict` for this task
