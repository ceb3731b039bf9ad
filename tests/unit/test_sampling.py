"""ShuffledLengthBuckets: every example once per epoch, batches of similar length, and no length drift over steps."""

from __future__ import annotations

import random

import numpy as np

from nlp_transfer.run.sampling import ShuffledLengthBuckets

BATCH = 8


def _lengths(n: int = 4000) -> list[int]:
    rng = random.Random(0)
    return [rng.randint(2, 60) for _ in range(n)]


def _batches(sampler: ShuffledLengthBuckets) -> list[list[int]]:
    order = list(sampler)
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]


def test_each_epoch_is_a_permutation_reproducible_by_seed() -> None:
    lengths = _lengths()
    first, again = ShuffledLengthBuckets(lengths, BATCH, seed=3), ShuffledLengthBuckets(lengths, BATCH, seed=3)
    epoch_one = list(first)
    assert sorted(epoch_one) == list(range(len(lengths)))
    assert epoch_one == list(again)
    assert list(first) != epoch_one  # the next epoch is a new order
    first.set_epoch(0)
    assert list(first) == epoch_one  # set_epoch (called by the Trainer) makes an epoch reproducible


def test_batches_hold_similar_lengths_so_padding_is_small() -> None:
    lengths = np.array(_lengths())
    batches = _batches(ShuffledLengthBuckets(lengths.tolist(), BATCH, seed=0))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_order = np.random.default_rng(0).permutation(len(lengths))
    padded_random = sum(BATCH * lengths[random_order[i : i + BATCH]].max() for i in range(0, len(lengths), BATCH))
    assert padded < 0.75 * padded_random
    assert padded < 1.1 * lengths.sum()  # within 10% of no padding at all


def test_batch_length_does_not_drift_with_the_step() -> None:
    """transformers' LengthGroupedSampler walks long -> short inside every 50 batches; this sampler must not."""
    lengths = np.array(_lengths())
    batches = _batches(ShuffledLengthBuckets(lengths.tolist(), BATCH, seed=0, bucket_batches=50))
    mean_length = np.array([lengths[b].mean() for b in batches])
    position_in_window = np.arange(len(batches)) % 50
    correlation = np.corrcoef(position_in_window, mean_length)[0, 1]
    assert abs(correlation) < 0.15, correlation
