"""serve.speed: a predictor prepared for serving gives the same predictions with its Linear weights cast once to the
autocast dtype, and pads its batches to a few lengths (in process, no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.serve.speed import PAD_MULTIPLE, cast_linear_weights, prepare_for_serving
from nlp_transfer.use.predict import open_predictor
from nlp_transfer.use.text_outputs import padded_length
from tests.conftest import invoke, write_recipe, write_sentiment_csv

TEXTS = ["a gripping, beautifully acted film", "dull", "the plot never ends and the jokes fall flat every time"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Path]:
    """Tiny BERT sentiment runs: full fine-tuning and LoRA (whose Linear layers peft wraps)."""
    root = tmp_path_factory.mktemp("serve-speed")
    write_sentiment_csv(root / "train.csv", copies=2)
    found = {}
    for name, method in {"full": {"name": "full"}, "lora": {"name": "lora", "r": 4}}.items():
        recipe = write_recipe(
            root / name,
            tiny_models["bert"],
            root / "train.csv",
            method=method,
            train={"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "seed": 0, "precision": "fp32"},
        )
        result = invoke("run", recipe)
        assert result.exit_code == 0, result.output
        found[name] = root / name / "run"
    return found


def bf16() -> Runtime:
    return Runtime.choose("cpu", "bf16")


def outputs(predictor: Any) -> torch.Tensor:
    return predictor.batch_logits([{"text": text} for text in TEXTS])


@pytest.mark.parametrize("method", ["full", "lora"])
def test_weights_cast_once_give_the_outputs_autocast_gives(runs: dict[str, Path], method: str) -> None:
    before: Any = open_predictor(runs[method], runtime=bf16())
    after: Any = open_predictor(runs[method], runtime=bf16())
    prepare_for_serving(after, after.runtime)
    linears = [module for module in after.model.modules() if type(module) is nn.Linear]
    assert linears and all(module.weight.dtype == torch.bfloat16 for module in linears)
    norms = [module for module in after.model.modules() if isinstance(module, nn.LayerNorm)]
    assert norms and all(module.weight.dtype == torch.float32 for module in norms)  # autocast keeps them fp32
    assert torch.equal(outputs(before), outputs(after))


def test_fp32_weights_stay_fp32(runs: dict[str, Path]) -> None:
    predictor: Any = open_predictor(runs["full"], runtime=Runtime.choose("cpu", "fp32"))
    prepare_for_serving(predictor, predictor.runtime)
    assert all(parameter.dtype == torch.float32 for parameter in predictor.model.parameters())


def test_cast_linear_weights_counts_plain_linears_only() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Sequential(nn.Linear(4, 2)))
    assert cast_linear_weights(model, torch.bfloat16) == 2
    assert model[0].weight.dtype == model[2][0].bias.dtype == torch.bfloat16
    assert model[1].weight.dtype == torch.float32


def test_padded_length_rounds_up_within_max_length() -> None:
    assert padded_length(1, 16, 128) == 16
    assert padded_length(16, 16, 128) == 16
    assert padded_length(17, 16, 128) == 32
    assert padded_length(97, 16, 100) == 100  # never past the model's max_length
    assert padded_length(7, 1, 128) == 7
    assert padded_length(9, 16, 0) == 9  # no max_length recorded: the longest text


def test_batches_pad_to_a_few_lengths_with_the_same_predictions(runs: dict[str, Path]) -> None:
    predictor: Any = open_predictor(runs["full"], runtime=Runtime.choose("cpu", "fp32"))
    plain = outputs(predictor)
    lengths: list[int] = []
    predictor.model.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    prepare_for_serving(predictor, predictor.runtime)
    for count in range(1, len(TEXTS) + 1):
        predictor.batch_logits([{"text": text} for text in TEXTS[:count]])
    padded = outputs(predictor)
    assert lengths and all(length % PAD_MULTIPLE == 0 for length in lengths)
    torch.testing.assert_close(padded, plain, atol=1e-5, rtol=1e-4)  # padding is masked out
