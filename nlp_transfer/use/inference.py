"""Inference at scale, the same for every task's predictor: the inputs arrive as a stream and are taken in windows
(WINDOW_BATCHES batches each); each window is sorted by length and cut into batches, so a batch pads to texts of
about its own length; the results are put back in input order. Memory holds one window, whatever the input's size.

Under `accelerate launch` (or torchrun) every process reads the same input and predicts every world-th window;
each writes its rows to a shard file, and the main process merges the shards window by window, in input order.
The rows are written as JSON lines, or as a CSV / TSV table when the output file's name says so (prediction_files).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

from transformers.utils.logging import tqdm  # follows transformers' progress-bar switch

from nlp_transfer.core import distributed
from nlp_transfer.use.prediction_files import output_format, row_writer

T = TypeVar("T")
R = TypeVar("R")

WINDOW_BATCHES = 64  # batches per window: enough for lengths to sort well, small enough to hold in memory


def windows(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while window := list(islice(iterator, size)):
        yield window


def in_length_order(
    window: Sequence[T], length: Callable[[T], int], batch_size: int, run: Callable[[list[T]], Sequence[R]]
) -> list[R]:
    """run() on batches of similar length (longest first, so the largest batch comes first and a device that
    cannot hold it fails at once); the results in the window's own order."""
    order = sorted(range(len(window)), key=lambda i: -length(window[i]))
    results: list[Any] = [None] * len(window)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        for index, result in zip(chosen, run([window[i] for i in chosen]), strict=True):
            results[index] = result
    return results


def ordered(
    items: Iterable[T],
    length: Callable[[T], int],
    batch_size: int,
    run: Callable[[list[T]], Sequence[R]],
    part: tuple[int, int] = (0, 1),
    progress: Any = None,
) -> Iterator[R]:
    """Every result in input order; with part = (rank, world) only the windows w with w % world == rank."""
    rank, world = part
    for number, window in enumerate(windows(items, batch_size * WINDOW_BATCHES)):
        if number % world != rank:
            continue
        yield from in_length_order(window, length, batch_size, run)
        if progress is not None:
            progress.update(len(window))


def my_share(count: int, window: int, rank: int, world: int) -> int:
    """How many of `count` inputs fall in this rank's windows."""
    full, rest = divmod(count, window)
    windows_of_rank = len(range(rank, full, world))
    return windows_of_rank * window + (rest if full % world == rank else 0)


def predict_lines(
    rows: Callable[[tuple[int, int], Any], Iterator[dict[str, Any]]],
    count: int,
    batch_size: int,
    out: Path | None,
    show_progress: bool,
) -> None:
    """Write every prediction in input order, to `out` (complete or not at all; JSON lines, CSV or TSV by its
    extension) or stdout (JSON lines).

    rows(part, progress) yields the predictions of this process's windows (see ordered())."""
    distributed.setup()
    rank, world = distributed.rank_and_world()
    window = batch_size * WINDOW_BATCHES
    progress = tqdm(
        total=my_share(count, window, rank, world),
        desc="Predicting",
        unit="inputs",
        disable=not show_progress,
        delay=2.0,  # nothing drawn for a prediction that takes less (a few texts)
    )
    fmt = output_format(out)
    if world == 1:
        with _sink(out) as handle:
            write = row_writer(handle, fmt)
            for row in rows((0, 1), progress):
                write(row)
        progress.close()
        return
    # Shards go beside the output (or in the working directory), which every process must see.
    shards = Path(distributed.agree(str((out.parent if out else Path.cwd()) / f".predict-shards-{uuid.uuid4().hex}")))
    shards.mkdir(parents=True, exist_ok=True)
    try:
        with (shards / f"rank{rank}.jsonl").open("w", encoding="utf-8") as shard:
            for row in rows((rank, world), progress):
                shard.write(json.dumps(row, ensure_ascii=False) + "\n")
        progress.close()
        distributed.barrier()
        if rank == 0:
            with _sink(out) as handle:
                write = row_writer(handle, fmt)
                for line in merged(sorted(shards.glob("rank*.jsonl"), key=_rank_of), window):
                    write(json.loads(line))
        distributed.barrier()
    finally:
        if rank == 0:
            shutil.rmtree(shards, ignore_errors=True)


def merged(shard_files: list[Path], window: int) -> Iterator[str]:
    """The shards' lines in input order: window w is the next `window` lines of shard w % world. Every window but
    the last is full, so a shorter (or empty) turn is the end."""
    handles = [path.open(encoding="utf-8") for path in shard_files]
    try:
        turn = 0
        while True:
            lines = list(islice(handles[turn % len(handles)], window))
            yield from lines
            if len(lines) < window:
                return
            turn += 1
    finally:
        for handle in handles:
            handle.close()


def _rank_of(path: Path) -> int:
    return int(path.stem.removeprefix("rank"))


@contextmanager
def _sink(out: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file written through a staging file beside it and renamed when complete."""
    if out is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    handle: IO[str] = staging.open("w", encoding="utf-8")
    try:
        yield handle
        handle.close()
        os.replace(staging, out)
    except BaseException:
        handle.close()
        staging.unlink(missing_ok=True)
        raise


def predictions(predictor: Any, items: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """A predictor's in-process predictions for a list of inputs (for a text model plain strings will do), in
    order, batched by length."""
    normalized = [item if isinstance(item, dict) else {"text": str(item)} for item in items]
    return ordered(normalized, predictor.items.length, predictor.batch_size, predictor.predict_batch)
