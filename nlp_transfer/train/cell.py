"""One run as one cell of a study: compare, tune and adapt train many runs in one process, one after another.

Each run starts from clean process state and gives back what it took, so that a cell neither inherits from the
one before (library messages held while it loaded, a stop request, the trackers' folders, progress-bar switches)
nor makes the next one start higher in memory (its model, optimizer and accelerator, freed with the device cache).
accelerate's shared state (AcceleratorState) is reset by the Trainer itself each time it builds its Accelerator;
what survives a run here is only what torch and the C libraries keep for reuse (measured by scripts/bench_cells.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import datasets
import huggingface_hub
import transformers
from accelerate.utils import release_memory

from nlp_transfer.core.quiet import held_records
from nlp_transfer.train import trackers
from nlp_transfer.train.interruption import STOP


@contextmanager
def clean_cell() -> Iterator[None]:
    """Around one run: what it finds is its own, and what it changed in the process is put back afterwards."""
    held_records()  # what the libraries said before this run (an earlier cell, a study reading its data) is not its
    STOP.training = STOP.requested = False
    environment = {name: os.environ.get(name) for name in trackers.ENVIRONMENT}
    bars = _progress_bars()
    try:
        yield
    finally:
        _restore_environment(environment)
        _restore_progress_bars(bars)
        release_memory()  # garbage-collect the run's model, optimizer and accelerator; empty the device's cache


def _progress_bars() -> tuple[bool, bool, bool]:
    return (
        transformers.utils.logging.is_progress_bar_enabled(),
        datasets.is_progress_bar_enabled(),
        not huggingface_hub.utils.are_progress_bars_disabled(),
    )


def _restore_progress_bars(bars: tuple[bool, bool, bool]) -> None:
    library, data, hub = bars
    (transformers.utils.logging.enable_progress_bar if library else transformers.utils.logging.disable_progress_bar)()
    (datasets.enable_progress_bars if data else datasets.disable_progress_bars)()
    (huggingface_hub.utils.enable_progress_bars if hub else huggingface_hub.utils.disable_progress_bars)()


def _restore_environment(environment: dict[str, str | None]) -> None:
    """The trackers' variables as they were before the run (a user's own value is never changed by a run)."""
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    trackers.forget()
