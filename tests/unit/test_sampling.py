"""The training samplers: SortedRandomBatches (random batches sorted by length, cut into sub-batches: the default) and
ShuffledLengthBuckets (length buckets; what bench_train.py compares against): every example once per epoch,
reproducible, little padding, no length drift over steps."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nlp_transfer.train.sampling import ShuffledLengthBuckets, SortedRandomBatches, token_budget_sub_batches

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


# ---- sorted sub-batches of random batches (the default) ---------------------------------------------------------


def test_sorted_random_batches_are_random_batches_sorted_by_length() -> None:
    lengths = np.array(_lengths())
    sampler = SortedRandomBatches(lengths.tolist(), 32, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))
    unsorted = list(SortedRandomBatches([0] * len(lengths), 32, seed=3))  # no lengths: the plain random batches
    for start in range(0, len(order), 32):
        batch, plain = order[start : start + 32], unsorted[start : start + 32]
        assert sorted(batch) == sorted(plain)  # the same examples: the batch is a random one
        assert list(lengths[batch]) == sorted(lengths[batch], reverse=True)  # longest first
    assert list(sampler) != order  # a new order next epoch
    sampler.set_epoch(0)
    assert list(sampler) == order


def test_sub_batches_of_sorted_random_batches_pad_little() -> None:
    lengths = np.array(_lengths())
    order = np.array(list(SortedRandomBatches(lengths.tolist(), 32, seed=0)))
    padded = {
        size: sum(size * lengths[order[i : i + size]].max() for i in range(0, len(order), size)) for size in (8, 32)
    }
    assert padded[8] < 0.75 * padded[32]  # four sorted sub-batches of 8 against one random batch of 32


def test_a_cpu_run_cuts_each_batch_into_sorted_sub_batches(tmp_path: Path) -> None:
    from nlp_transfer.recipe import TrainSpec
    from nlp_transfer.train.arguments import sub_batches, training_arguments

    assert sub_batches(TrainSpec(batch_size=32), "cpu") == 4  # 4 x 8 under gradient accumulation
    assert sub_batches(TrainSpec(batch_size=16), "cpu") == 2
    assert sub_batches(TrainSpec(batch_size=8), "cpu") == 1
    assert sub_batches(TrainSpec(batch_size=128), "cuda") == 4  # 4 x 32 on a GPU
    assert sub_batches(TrainSpec(batch_size=32), "cuda") == 1
    assert sub_batches(TrainSpec(batch_size=32, group_by_length=False), "cpu") == 1
    assert sub_batches(TrainSpec(batch_size=32, padding="max_length"), "cpu") == 1
    spec = TrainSpec(batch_size=32, gradient_accumulation_steps=2, precision="fp32")
    arguments = training_arguments(spec, tmp_path, split_batches=4)
    assert (arguments.per_device_train_batch_size, arguments.gradient_accumulation_steps) == (8, 8)


def test_training_on_sub_batches_equals_training_on_the_whole_random_batches(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """Cutting batches into sorted sub-batches changes the padding, not the optimisation: the same random batches
    (group_by_length off gives them uncut), the same weights after training (fp32, no dropout)."""
    import json

    from transformers import AutoConfig

    from tests.conftest import invoke, write_recipe

    model = tmp_path / "no-dropout"
    shutil.copytree(tiny_models["bert"], model)
    config = AutoConfig.from_pretrained(model)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    config.save_pretrained(model)
    losses, sgd = [], {"optim": "sgd"}
    for grouped, seed in ((True, 0), (False, 0), (False, 1)):
        folder = tmp_path / f"grouped-{grouped}-{seed}"
        # SGD: its step is linear in the gradient, so float rounding stays rounding (Adam divides it by tiny
        # second moments and turns it into 1e-4 differences)
        train = {"batch_size": 32, "epochs": 4, "precision": "fp32", "group_by_length": grouped, "trainer": sgd}
        train |= {"seed": seed, "learning_rate": 0.3, "warmup_ratio": 0.0}  # plain SGD needs a large step to move
        data = {"eval": str(sentiment_csv)}  # all 96 rows train: three whole batches an epoch
        result = invoke("run", write_recipe(folder, model, sentiment_csv, train=train, data=data))
        assert result.exit_code == 0, result.output
        losses.append(json.loads((folder / "run" / "metrics.json").read_text())["eval"]["eval_loss"])
    assert abs(losses[0] - losses[1]) < 1e-6, losses
    assert abs(losses[0] - losses[2]) > 1e-5, losses  # other batches (another seed) do show


def test_a_token_budget_cuts_long_texts_into_few_rows_and_short_ones_into_many() -> None:
    import torch

    from nlp_transfer.train.sampling import token_budget_rows

    lengths = torch.tensor([5, 60, 7, 30, 6, 61, 5, 8] * 4)
    groups = token_budget_rows(lengths, budget=128)
    rows = torch.cat(groups)
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # every row once
    assert lengths[rows].tolist() == sorted(lengths.tolist(), reverse=True)  # longest first
    for group in groups:
        padded = len(group) * int(lengths[group].max())
        assert padded <= 128 or len(group) == 1
    assert [len(g) for g in groups] == [2, 2, 2, 2, 4, 16, 4]  # 2 rows of 60-61 tokens, 16 of 5-8
    assert token_budget_rows(torch.tensor([200, 3]), budget=64)[0].tolist() == [0]  # a text over the budget: alone


def test_token_budget_sub_batches_trim_each_to_its_longest_text() -> None:
    import torch

    from nlp_transfer.train.sampling import token_budget_sub_batches

    lengths = [9, 3, 4, 9, 2, 3]
    mask = torch.tensor([[1] * n + [0] * (9 - n) for n in lengths])
    ids = mask * torch.arange(1, 10)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 0, 1, 1, 0])}
    parts = token_budget_sub_batches(batch, budget=18)
    assert [p["input_ids"].shape for p in parts] == [(2, 9), (4, 4)]
    assert parts[1]["labels"].tolist() == [0, 1, 0, 1]  # rows 2, 1, 5, 4: longest first, labels follow their rows
    assert parts[1]["input_ids"][0].tolist() == [1, 2, 3, 4]
    # left padding: tokens do not come first, so columns are kept (positions keep their meaning)
    left = {"input_ids": ids.flip(1), "attention_mask": mask.flip(1)}
    assert [p["input_ids"].shape[1] for p in token_budget_sub_batches(left, budget=18)] == [9, 9]
    # integer labels per token are trimmed with the tokens
    tokens = {"input_ids": ids, "attention_mask": mask, "labels": torch.where(mask.bool(), 1, -100)}
    assert [p["labels"].shape for p in token_budget_sub_batches(tokens, budget=18)] == [(2, 9), (4, 4)]


def test_sub_batch_tokens_needs_dynamic_padding_and_one_process(monkeypatch: Any) -> None:
    import pytest
    from pydantic import ValidationError

    from nlp_transfer.core.distributed import CommonError
    from nlp_transfer.recipe import TrainSpec
    from nlp_transfer.train.acceleration import acceleration_arguments
    from nlp_transfer.train.arguments import sub_batches

    with pytest.raises(ValidationError, match=r"train\.sub_batch_tokens"):
        TrainSpec(sub_batch_tokens=256, padding="max_length")
    spec = TrainSpec(sub_batch_tokens=256, precision="fp32")
    assert sub_batches(spec, "cpu") == 1  # whole batches reach the Trainer, which cuts them by tokens
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(CommonError, match="one process"):
        acceleration_arguments(spec)


def test_training_on_token_budget_sub_batches_equals_training_on_the_whole_batches(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """Sub-batches cut by tokens are weighted by their share of the batch: the same weights as whole batches."""
    import json

    from transformers import AutoConfig

    from nlp_transfer.train import trainer
    from tests.conftest import invoke, write_recipe

    model = tmp_path / "no-dropout"
    shutil.copytree(tiny_models["bert"], model)
    config = AutoConfig.from_pretrained(model)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    config.save_pretrained(model)
    cuts: list[int] = []

    def counted(inputs: Any, budget: int, multiple: int | None) -> Any:
        parts = token_budget_sub_batches(inputs, budget, multiple)
        cuts.append(len(parts))
        return parts

    monkeypatch.setattr(trainer, "token_budget_sub_batches", counted)
    losses = []
    for budget in (48, None):
        folder = tmp_path / f"budget-{budget}"
        train = {"batch_size": 32, "epochs": 2, "precision": "fp32", "group_by_length": False, "seed": 0}
        train |= {"learning_rate": 0.3, "warmup_ratio": 0.0, "trainer": {"optim": "sgd"}, "sub_batch_tokens": budget}
        data = {"eval": str(sentiment_csv)}
        result = invoke("run", write_recipe(folder, model, sentiment_csv, train=train, data=data))
        assert result.exit_code == 0, result.output
        losses.append(json.loads((folder / "run" / "metrics.json").read_text())["eval"]["eval_loss"])
    assert len(cuts) == 6 and min(cuts) > 1, cuts  # 3 batches an epoch, each cut into several sub-batches
    assert abs(losses[0] - losses[1]) < 1e-6, losses


def test_sub_batches_share_one_autocast_cast_of_the_weights_with_the_same_gradients() -> None:
    """The step's sub-batches each autocast their forward; inside one_autocast_cache the weights are cast to bf16
    once for all of them (fewer casts), and the gradients are bit for bit those of casting each time."""
    import contextlib

    import torch

    from nlp_transfer.train.trainer import one_autocast_cache

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 2))
    parts = [torch.randn(4, 16) for _ in range(3)]

    def step(region: Any) -> tuple[list[torch.Tensor], int]:
        model.zero_grad()
        with torch.profiler.profile() as profiler, region:
            for part in parts:
                with torch.autocast("cpu", dtype=torch.bfloat16):  # as accelerate wraps each forward
                    loss = model(part).float().sum()
                loss.backward()  # outside the forward's autocast, as the Trainer does
        casts = sum(1 for event in profiler.events() if event.name == "aten::_to_copy")
        return [p.grad.clone() for p in model.parameters() if p.grad is not None], casts

    each, each_casts = step(contextlib.nullcontext())
    shared, shared_casts = step(one_autocast_cache("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(each, shared, strict=True))
    assert shared_casts == each_casts - 2 * 4  # 2 linear layers x (weight, bias), cast once instead of 3 times
    assert not torch.is_autocast_enabled("cpu")  # nothing left switched on
