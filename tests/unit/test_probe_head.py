"""The probe's head on cached features holds (registers) every module its forward reads: what a replica made by
nn.DataParallel, or any functional call, swaps in is what computes the logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.func import functional_call
from transformers import AutoModelForSequenceClassification

from nlp_transfer.methods.architectures import architecture_of, head_modules
from nlp_transfer.methods.features import HeadOnFeatures


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "roberta", "gpt2"])
def test_every_module_the_head_reads_is_registered(tiny_models: dict[str, Path], architecture: str) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_models[architecture]).eval()
    arch = architecture_of(model, "probe")
    head = HeadOnFeatures(arch, head_modules(model, arch)).eval()
    # nn.DataParallel replicates registered modules only; anything else a forward reads stays on the first device.
    unregistered = [name for name, value in vars(head).items() if isinstance(value, torch.nn.Module)]
    assert unregistered == [], f"modules read by forward but not registered: {unregistered}"
    features = torch.randn(5, model.config.hidden_size)
    logits = head(features).logits
    assert logits.shape == (5, model.config.num_labels)
    # The head's parameters are exactly the task model's head parameters (the same tensors, saved with the model).
    task_head = {id(p) for name in head_modules(model, arch).values() for p in name.parameters()}
    assert {id(p) for p in head.parameters()} == task_head
    zeros = {name: torch.zeros_like(p) for name, p in head.named_parameters()}
    swapped = functional_call(head, zeros, (features,)).logits
    assert torch.equal(swapped, torch.zeros_like(swapped))  # the swapped-in weights computed it, nothing else
    assert not torch.equal(logits, torch.zeros_like(logits))
