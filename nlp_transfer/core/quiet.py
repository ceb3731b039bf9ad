"""Library chatter kept off the terminal while models and data load: the one place that does it.

transformers prints a weight-loading progress bar and a multi-line load report (which head weights are new), datasets
prints a progress bar per file read, huggingface_hub one per download, and peft and torch warn through `warnings`.
None of it helps a user whose command then fails on bad input: the error line would arrive under a screen of it.
Every loading path runs inside `quiet_libraries()`; what the libraries logged or warned is held (not printed) and
the run writes it to its run.log once the run folder exists (`held_records()`). Commands without a run folder drop
it. Our own log lines (the `nlp_transfer` logger) are not touched.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

LIBRARY_LOGGERS = ("transformers", "datasets", "huggingface_hub", "peft", "accelerate", "torch")
TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")
HELD_MAX = 1000  # records kept for the run log; a long-lived process (compare, adapt) never grows without bound

_held: deque[logging.LogRecord] = deque(maxlen=HELD_MAX)
_depth = 0  # nested quiet blocks (a model loaded while data loads) share the outermost one's settings


class _Hold(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        # The message as it will read in the log file: arguments filled in, terminal colour codes (transformers'
        # load report is bold) taken out.
        record.msg, record.args = TERMINAL_CODES.sub("", record.getMessage()), None
        _held.append(record)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Inside: the libraries' log records and warnings are held for the run log, their progress bars are off."""
    global _depth
    if _depth:
        yield
        return
    _depth += 1
    try:
        with ExitStack() as stack:
            for logger in _library_loggers():
                stack.enter_context(_held_logger(logger))
            stack.enter_context(_held_root_calls())
            for bars in _progress_bars():
                stack.enter_context(bars)
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            try:
                yield
            finally:
                for warning in caught:
                    _held.append(_as_record(warning))
    finally:
        _depth -= 1


def held_records() -> list[logging.LogRecord]:
    """What the libraries said while quiet, oldest first; the holder is emptied (the run log takes them once)."""
    records = list(_held)
    _held.clear()
    return records


def _library_loggers() -> list[logging.Logger]:
    """The libraries' loggers, and those below them with handlers of their own (torch gives torch.onnx, torch._dynamo
    and others their own stderr handler, not propagating to `torch`)."""
    below = [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
        and logger.handlers
        and name.startswith(tuple(f"{n}." for n in LIBRARY_LOGGERS))
    ]
    return [logging.getLogger(name) for name in LIBRARY_LOGGERS] + below


@contextmanager
def _held_logger(logger: logging.Logger) -> Iterator[None]:
    """The logger's own handlers (e.g. transformers' stderr handler) swapped for the holder, and no propagation to
    the root logger's console handlers; restored on the way out."""
    handlers, propagate = logger.handlers[:], logger.propagate
    hold = _Hold()
    logger.handlers = [hold]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers = handlers
        logger.propagate = propagate


class _HoldFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        _Hold().emit(record)
        return False


@contextmanager
def _held_root_calls() -> Iterator[None]:
    """Records a library logs on the root logger itself (onnxruntime's quantizer calls logging.warning) are held.
    A logger's filter sees only the records made on it, so our own lines, which reach the root's handlers by
    propagation, still print. While the root has no handler, a null one stops logging.warning from installing a
    stderr handler for the rest of the process (logging.basicConfig)."""
    root = logging.getLogger()
    hold, null = _HoldFilter(), None if root.handlers else logging.NullHandler()
    root.addFilter(hold)
    if null is not None:
        root.addHandler(null)
    try:
        yield
    finally:
        root.removeFilter(hold)
        if null is not None:
            root.removeHandler(null)


def _progress_bars() -> list[Any]:
    """Context managers that switch each library's progress bars off and back to what they were."""
    import datasets
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as transformers_logging

    return [
        _switched(
            transformers_logging.is_progress_bar_enabled(),
            transformers_logging.disable_progress_bar,
            transformers_logging.enable_progress_bar,
        ),
        _switched(datasets.is_progress_bar_enabled(), datasets.disable_progress_bars, datasets.enable_progress_bars),
        _switched(
            not hub_utils.are_progress_bars_disabled(), hub_utils.disable_progress_bars, hub_utils.enable_progress_bars
        ),
    ]


@contextmanager
def _switched(was_on: bool, off: Any, on: Any) -> Iterator[None]:
    if was_on:
        off()
    try:
        yield
    finally:
        if was_on:
            on()


def _as_record(warning: warnings.WarningMessage) -> logging.LogRecord:
    return logging.LogRecord(
        name=f"warnings.{warning.category.__name__}",
        level=logging.WARNING,
        pathname=str(warning.filename),
        lineno=warning.lineno or 0,
        msg="%s",
        args=(str(warning.message),),
        exc_info=None,
    )
