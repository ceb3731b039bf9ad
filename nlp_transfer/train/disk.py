"""Before training: can the run folder be written, and is there room for what the run will write?

A run that fails to save after an hour of training loses the hour. The estimate counts what the run writes at its
largest: the saved model (for LoRA only the trainable weights) plus the checkpoints kept at once (checkpoints.KEEP
and the best one), each holding the saved weights and the optimizer's two moments per trainable weight.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from torch import nn

from nlp_transfer.core.errors import UserError
from nlp_transfer.train.checkpoints import KEEP

MARGIN = 1.2  # logs, tokenizer, card, and the estimate's own slack


def bytes_needed(model: nn.Module, saves_trainable_only: bool) -> int:
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    saved = trainable if saves_trainable_only else total
    checkpoint = saved + 2 * trainable  # weights + Adam's first and second moments
    return int(MARGIN * (saved + (KEEP + 1) * checkpoint))


def check_room(run_dir: Path, needed: int) -> None:
    """The nearest existing folder on the way to run_dir must be writable and hold `needed` bytes."""
    existing = next(p for p in [run_dir, *run_dir.parents] if p.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(
            f"output folder {run_dir} cannot be written ({type(err).__name__} in {existing}: {err.strerror}); "
            "choose another output.dir (or --output-dir)"
        ) from err
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise UserError(
            f"output folder {run_dir}: the run will write about {_gb(needed)} (model and checkpoints) but "
            f"{existing} has {_gb(free)} free; free some space or set output.dir on another disk"
        )


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"
