"""Dynamic batching: requests for one model wait in a queue and run together.

A collector task on the event loop takes the oldest waiting request, then adds requests while the batch holds fewer
than `max_batch` texts and the oldest has waited less than `max_wait` seconds; a request that would overfill the
batch starts the next one (a request larger than max_batch runs alone, cut into max_batch pieces). The batch runs
on one worker thread (the model never blocks the event loop) through use.inference.in_length_order: sorted by
length, cut into batches of similar length, the results put back in order, each caller given its own. While the
model runs, new requests queue, so batches grow with the load by themselves.

The queue is bounded in texts: a request that would overfill it is refused at once (QueueFull: 503 with
Retry-After) rather than left to wait without bound. A caller that gave up (timed out, disconnected) is skipped
if its request has not run yet, and its results dropped if it has.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nlp_transfer.use.inference import in_length_order
from nlp_transfer.use.inputs import Item

Rows = list[dict[str, Any]]


RETRY_AFTER_SECONDS = 1  # what a refused caller is told to wait: a full queue drains within a few batches


class QueueFull(Exception):
    """The model's queue has no room for this request now."""


@dataclass
class Job:
    items: list[Item]
    future: asyncio.Future[Rows]
    arrived: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchSettings:
    max_batch: int = 32  # texts per model batch
    max_wait: float = 0.005  # seconds the oldest request may wait for others to join it
    max_queue: int = 1024  # texts waiting, beyond which requests are refused


class Batcher:
    """One model's queue and worker: submit() items, get their rows back in order."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[Item]], Sequence[dict[str, Any]]],
        length: Callable[[Item], int],
        settings: BatchSettings,
        observe: Callable[[str, int, float], None],
        depth: Callable[[str, int], None],
    ) -> None:
        self.name, self.run, self.length, self.settings = name, run, length, settings
        self.observe, self.depth = observe, depth  # metrics: (model, texts, seconds), (model, texts waiting)
        self.jobs: deque[Job] = deque()
        self.waiting = 0  # texts in self.jobs
        self.wake = asyncio.Event()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{name}")
        self.collector: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.collector = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self.collector is not None:
            self.collector.cancel()
            await asyncio.gather(self.collector, return_exceptions=True)
        self.worker.shutdown(wait=True)

    async def submit(self, items: list[Item]) -> Rows:
        """The rows of `items`, in order, once a batch has run them; QueueFull if the queue has no room."""
        if self.waiting + len(items) > self.settings.max_queue:
            raise QueueFull(self.name)
        job = Job(items, asyncio.get_running_loop().create_future())
        self.jobs.append(job)
        self._waiting(len(items))
        self.wake.set()
        return await job.future

    def _waiting(self, change: int) -> None:
        self.waiting += change
        self.depth(self.name, self.waiting)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._next_batch()
            self._waiting(-sum(len(job.items) for job in jobs))  # running now, no longer waiting
            if not jobs:
                continue
            items = [item for job in jobs for item in job.items]
            started = time.perf_counter()
            try:
                rows = await loop.run_in_executor(self.worker, self._run_batch, items)
            except Exception as err:  # handed to each caller, whose handler logs it once with an id
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            self.observe(self.name, len(items), time.perf_counter() - started)
            start = 0
            for job in jobs:
                if not job.future.done():  # a caller that gave up gets nothing set
                    job.future.set_result(rows[start : start + len(job.items)])
                start += len(job.items)

    def _run_batch(self, items: list[Item]) -> list[dict[str, Any]]:
        return in_length_order(items, self.length, self.settings.max_batch, self.run)

    async def _next_batch(self) -> list[Job]:
        """Requests that run together: the oldest, and those that join it within max_wait, up to max_batch texts."""
        while not self.jobs:
            self.wake.clear()
            await self.wake.wait()
        jobs: list[Job] = []
        texts = 0
        deadline = self.jobs[0].arrived + self.settings.max_wait
        while True:
            while self.jobs and (not jobs or texts + len(self.jobs[0].items) <= self.settings.max_batch):
                job = self.jobs.popleft()
                if job.future.done():  # gave up while waiting
                    self._waiting(-len(job.items))
                    continue
                jobs.append(job)
                texts += len(job.items)
            left = deadline - time.monotonic()
            if self.jobs or texts >= self.settings.max_batch or left <= 0:
                return jobs
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), left)
            except TimeoutError:
                return jobs
