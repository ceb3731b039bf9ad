"""Several processes, one run: what changes when a recipe runs under `accelerate launch` / torchrun.

Every process prepares the same data and model and trains its shard of each batch (the Trainer does that part).
Only the main process (rank 0) creates the run folder and writes files; the others write nothing. The main process
tokenizes and extracts features first so the others read its cache instead of repeating the work. Rank, the
main-process-first order and broadcasting are accelerate's (PartialState), the same state the Trainer uses.

On a machine without GPUs torch's gloo backend connects the processes: accelerate uses it only when told the run
is on CPU, so setup() says so when several processes start without CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import torch

from nlp_transfer.core.errors import UserError

T = TypeVar("T")


class CommonError(UserError):
    """Bad input that every process of a launch raises together (rank 0 decided it, or the launch itself is
    refused): the command line prints it once, from the main process, instead of once per process."""


def launched() -> bool:
    """Started by accelerate launch / torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as the launcher set it (0 when not launched), read without joining the others."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def refuse_launch(command: str, why: str) -> None:
    """A command that does not run under several processes says so in one line, before anything starts."""
    if launched():
        raise CommonError(
            f"{command} under accelerate launch: {why}; run `nlp-transfer {command}` without accelerate launch "
            "(one process, one device)"
        )


def setup() -> None:
    """Start the process group now (before anything is written), so ranks can agree on a run folder."""
    if not launched():
        return
    if not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")  # MULTI_CPU with gloo
    _state()


def _state() -> Any:
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main() -> bool:
    # Read from the environment before setup() too: a single process is always the main one.
    return not launched() or bool(_state().is_main_process)


def agree(value: Any) -> Any:
    """Rank 0's value on every rank (e.g. a timestamped run folder name)."""
    if not launched():
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def main_first() -> AbstractContextManager[Any]:
    """The main process runs the block first (filling caches); the others run it after, reading them."""
    if not launched():
        return nullcontext()
    manager: AbstractContextManager[Any] = _state().main_process_first()
    return manager


def barrier() -> None:
    if launched():
        _state().wait_for_everyone()


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) when not launched."""
    if not launched():
        return 0, 1
    state = _state()
    return int(state.process_index), int(state.num_processes)


def decide(work: Callable[[], T]) -> T:
    """Rank 0 runs `work` (reading its own disk: the others may not share it) and every process gets its answer,
    or the same one-line refusal. Without a launch, just `work()`."""
    if not launched():
        return work()
    answer: T | None = None
    problem: str | None = None
    if is_main():
        try:
            answer = work()
        except UserError as err:
            problem = str(err)
    problem, answer = agree((problem, answer))
    if problem is not None:
        raise CommonError(problem)
    return answer
