"""Several processes, one run: what changes when a recipe runs under `accelerate launch` / torchrun.

Every process prepares the same data and model and trains its shard of each batch (the Trainer does that part).
Only the main process (rank 0) creates the run folder and writes files; the others write nothing. The main process
tokenizes and extracts features first so the others read its cache instead of repeating the work.

On a machine without GPUs torch's gloo backend connects the processes: accelerate uses it only when told the run
is on CPU, so setup() says so when several processes start without CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def setup() -> None:
    """Start the process group now (before anything is written), so ranks can agree on a run folder."""
    if world_size() <= 1:
        return
    if not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")  # MULTI_CPU with gloo
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def agree(value: Any) -> Any:
    """Rank 0's value on every rank (e.g. a timestamped run folder name)."""
    if world_size() <= 1 or not torch.distributed.is_initialized():
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier() -> None:
    if world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """The main process runs the block first (filling caches); the others run it after, reading them."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()
