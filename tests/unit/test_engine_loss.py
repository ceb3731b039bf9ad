"""The training engine's loss (train/trainer.py), checked directly on a TaskTrainer: at step 1 the logged loss is the
loss of the same model on the same batch, and the clipped gradient is the plain full-batch gradient, for every
task loss (the model's own cross-entropy, class-weighted cross-entropy, multi-label's per-label sigmoid with
binary cross-entropy, focal or asymmetric loss, regression's mean squared error), with the batch trained whole and
as length-sorted sub-batches."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, DataCollatorWithPadding, TrainerCallback

from nlp_transfer.methods import PhaseInputs
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.tasks.base import LossOnLogits, PreparedTask
from nlp_transfer.tasks.classification import weighted_cross_entropy
from nlp_transfer.tasks.multi_label_losses import asymmetric, binary_cross_entropy, focal
from nlp_transfer.tasks.regression import mean_squared_error
from nlp_transfer.train.trainer import build_trainer

BATCH = 32  # one optimizer step: on a CPU, 4 sorted sub-batches of 8 (or one whole batch without grouping)
LABELS = 3
CLIP = 0.05  # max_grad_norm, below every gradient norm here: clipping acts on the step


def _labels(kind: str, generator: torch.Generator) -> list[Any]:
    if kind in ("model", "class_weights"):
        return torch.randint(0, LABELS, (BATCH,), generator=generator).tolist()
    if kind.startswith("multi_label"):
        return torch.randint(0, 2, (BATCH, LABELS), generator=generator).float().tolist()
    return torch.randn(BATCH, LABELS, generator=generator).tolist()  # regression: three standardised targets


LOSSES: dict[str, LossOnLogits | None] = {
    "model": None,  # the model's own cross-entropy
    "class_weights": weighted_cross_entropy([0.5, 2.0, 4.0]),
    "multi_label": binary_cross_entropy([1.0, 3.0, 0.5]),
    "multi_label_focal": focal(2.0, 0.25, [1.0, 3.0, 0.5]),
    "multi_label_asymmetric": asymmetric(4.0, 1.0, 0.05, None),
    "regression": mean_squared_error,
}


def _rows(kind: str) -> datasets.Dataset:
    """BATCH rows of very different lengths (so sub-batches pad differently from the whole batch)."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(3, 40, (BATCH,), generator=generator).tolist()
    ids = [torch.randint(5, 99, (n,), generator=generator).tolist() for n in lengths]
    return datasets.Dataset.from_dict(
        {"input_ids": ids, "attention_mask": [[1] * n for n in lengths], "labels": _labels(kind, generator)}
    )


def _model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=LABELS,
        hidden_dropout_prob=0.0,  # the same outputs in training as in the reference computation
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


class Gradients(TrainerCallback):
    """The gradient the optimizer is about to apply (after accumulation and clipping)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.seen: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        if not self.seen:
            self.seen = {n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None}


def _full_batch(model: torch.nn.Module, rows: datasets.Dataset, loss: LossOnLogits | None) -> tuple[float, Any]:
    """The loss of the whole batch at once and its gradient clipped as the Trainer clips (max_grad_norm CLIP)."""
    batch = DataCollatorWithPadding(_tokenizer())(list(rows))
    model.zero_grad()
    if loss is None:
        value = model(**batch).loss
    else:
        value = loss(model(**{k: v for k, v in batch.items() if k != "labels"}).logits, batch["labels"])
    value.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    return value.item(), (norm.item(), grads)


def _tokenizer() -> Any:
    """A real tokenizer for padding (pad id 0); the token ids themselves are drawn below the tiny vocabulary."""
    from transformers import AutoTokenizer

    from tests.conftest import minilm_dir

    return AutoTokenizer.from_pretrained(minilm_dir())


def _train_one_step(tmp_path: Path, kind: str, grouped: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    model, rows = _model(), _rows(kind)
    prepared = PreparedTask(splits=datasets.DatasetDict(train=rows), model_kwargs={})
    prepared.loss = LOSSES[kind]
    spec = TrainSpec(
        batch_size=BATCH,
        max_steps=1,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        precision="fp32",
        eval_strategy="no",
        logging_steps=1,
        group_by_length=grouped,
        trainer={"max_grad_norm": CLIP},
    )
    gradients = Gradients(model)
    inputs = PhaseInputs(model=model, splits={"train": rows}, train=spec)
    trainer = build_trainer(inputs, _tokenizer(), prepared, tmp_path, "train", extra_callbacks=[gradients])
    assert trainer.args.gradient_accumulation_steps == (4 if grouped else 1)
    trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "loss" in entry)
    return logged, gradients.seen


@pytest.mark.parametrize("grouped", [True, False], ids=["sub-batches", "whole"])
@pytest.mark.parametrize("kind", list(LOSSES))
def test_step_one_logs_the_batch_loss_and_applies_the_full_batch_gradient(
    tmp_path: Path, kind: str, grouped: bool
) -> None:
    logged, applied = _train_one_step(tmp_path, kind, grouped)
    expected_loss, (expected_norm, expected_grads) = _full_batch(_model(), _rows(kind), LOSSES[kind])
    assert logged["loss"] == pytest.approx(expected_loss, rel=1e-4), (kind, grouped)
    assert logged["grad_norm"] == pytest.approx(expected_norm, rel=1e-3), (kind, grouped)
    assert expected_norm > CLIP  # so clipping acted: the applied gradient is the clipped full-batch one
    assert applied.keys() == expected_grads.keys()
    for name, grad in expected_grads.items():
        torch.testing.assert_close(applied[name], grad, rtol=1e-3, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


# ---- the NaN guard: training steps only -----------------------------------------------------------------------


@pytest.mark.parametrize("skips", [0, 2])
def test_a_nonfinite_eval_loss_is_reported_not_called_divergence_nor_skipped(
    tmp_path: Path, skips: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An eval split whose targets hold NaN gives a NaN eval loss: reported as a metric that is not finite, while
    training (whose batches are finite) neither stops as "diverged" nor spends its skip budget."""
    rows = _rows("regression")
    targets = [list(t) for t in rows["labels"]]
    targets[3][1] = float("nan")
    evaluated = rows.remove_columns("labels").add_column("labels", targets)
    model = _model()
    prepared = PreparedTask(splits=datasets.DatasetDict(train=rows), model_kwargs={})
    prepared.loss = mean_squared_error
    spec = TrainSpec(batch_size=BATCH, max_steps=1, precision="fp32", eval_strategy="no", skip_nonfinite_batches=skips)
    inputs = PhaseInputs(model=model, splits={"train": rows, "eval": evaluated}, train=spec)
    trainer = build_trainer(inputs, _tokenizer(), prepared, tmp_path, "train")
    trainer.train()
    with caplog.at_level("WARNING", logger="nlp_transfer.train.trainer"):
        metrics = trainer.evaluate(evaluated)
    assert math.isnan(metrics["eval_loss"])
    assert trainer.skipped_batches == []
    assert "evaluation metric not finite: eval_loss = nan" in caplog.text
    assert "diverged" not in caplog.text
