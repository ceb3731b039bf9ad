"""Ctrl-C and SIGTERM: during training, finish the step, save a checkpoint and stop (training.StopOnRequest);
anywhere else, or on a second signal, stop at once. Either way the run folder is marked interrupted, and a run
stopped with a checkpoint can be resumed (`nlp-transfer run RECIPE --resume`)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class StopRequest:
    training: bool = False  # a Trainer is running: it can stop cleanly at the end of a step
    requested: bool = False


STOP = StopRequest()


class RunInterrupted(KeyboardInterrupt):
    """Stopped on request with a checkpoint saved; `message` says how to resume."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def on_signal(signum: int, frame: Any) -> None:
    if STOP.training and not STOP.requested:
        STOP.requested = True
        sys.stderr.write("\nstopping after this training step and saving a checkpoint (signal again to stop at once)\n")
        return
    raise KeyboardInterrupt


@contextmanager
def training() -> Iterator[None]:
    """While a Trainer trains: a signal asks it to stop cleanly instead of raising at once."""
    STOP.training, STOP.requested = True, False
    try:
        yield
    finally:
        STOP.training = False


def install_handlers() -> None:
    """The one way commands that train handle Ctrl-C and SIGTERM: during training a clean stop with a checkpoint,
    elsewhere (or on a second signal) KeyboardInterrupt at once. Either way the run folder is marked interrupted."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
