"""Continued pre-training on the target corpus (domain-adaptive pre-training): masked LM for encoders, causal LM
for decoders, full or LoRA. The stage's output is a plain encoder folder (AutoModel weights + tokenizer) that the
finetune stage loads as its model.

Speed: a masked-LM step normally projects every position onto the vocabulary (384 x 30,522 for MiniLM) although
only 15% of positions are masked and scored. masked_positions_loss runs the encoder, gathers the masked positions
and applies the LM head to those alone (MLM_HEADS says how, per architecture); see scripts/bench_mlm.py.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    set_seed,
)

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import Asset
from nlp_transfer.methods import PhaseInputs
from nlp_transfer.methods.lora import lora_config, with_adapters
from nlp_transfer.methods.pretrained import has_head, loading
from nlp_transfer.recipe import PretrainStage, TrainSpec
from nlp_transfer.runfolder.folder import CHECKPOINTS_DIR
from nlp_transfer.studies.adapt.corpus import pack_blocks
from nlp_transfer.train import checkpoints, interruption
from nlp_transfer.train.trainer import LossFunction, build_trainer, stopped_on_request

log = logging.getLogger(__name__)

PHASE = "pretrain"  # its Trainer's phase: checkpoints/pretrain, and the name in trainer_log.jsonl

# objective -> the Auto class that adds its head
LM_CLASSES: dict[str, Any] = {"mlm": AutoModelForMaskedLM, "clm": AutoModelForCausalLM}

# model_type -> the masked-LM head applied to the hidden states of the masked positions only, (M, H) -> (M, V).
# Architectures not listed are trained through their own forward (every position scored: correct, slower).
MLM_HEADS: dict[str, Callable[[Any, torch.Tensor], torch.Tensor]] = {
    "bert": lambda lm, hidden: lm.cls(hidden),
    "roberta": lambda lm, hidden: lm.lm_head(hidden),
    "distilbert": lambda lm, hidden: lm.vocab_projector(lm.vocab_layer_norm(lm.activation(lm.vocab_transform(hidden)))),
}


def pick_objective(config: Any, requested: str, tokenizer: PreTrainedTokenizerBase, reference: str) -> str:
    """mlm or clm: what was asked, if the architecture has that head; auto prefers masked LM (bidirectional
    encoders are pre-trained with it)."""
    available = [name for name, auto in LM_CLASSES.items() if has_head(auto, config)]
    if tokenizer.mask_token is None and "mlm" in available:
        available.remove("mlm")  # no [MASK] token to mask with
    if not available:
        raise UserError(
            f"adapt.stages (pretrain): model '{reference}' (architecture '{config.model_type}') has no masked-LM or "
            "causal-LM head in transformers, so continued pre-training cannot add one; remove the pretrain stage "
            "or use a BERT, RoBERTa, DistilBERT or GPT-2 style model"
        )
    if requested == "auto":
        return available[0]
    if requested not in available:
        raise UserError(
            f"adapt.stages (pretrain): objective '{requested}' is not possible for model '{reference}' "
            f"(architecture '{config.model_type}'); set objective to {' or '.join(available)} (or auto)"
        )
    return requested


@dataclass
class PretrainResult:
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]


def masked_positions_loss(head: Callable[[Any, torch.Tensor], torch.Tensor]) -> LossFunction:
    """Masked-LM loss from the masked positions alone: the vocabulary projection runs on ~15% of the tokens."""

    def loss(model: nn.Module, inputs: dict[str, Any], return_outputs: bool) -> Any:
        labels = inputs.pop("labels")  # (B, T), -100 where not masked
        lm: Any = getattr(model, "get_base_model", lambda: model)()  # through a PeftModel
        encoder: Any = lm.base_model
        hidden = encoder(**inputs).last_hidden_state  # (B, T, H)
        masked = labels != -100
        logits = head(lm, hidden[masked])  # (M, V)
        value = nn.functional.cross_entropy(logits.float(), labels[masked])
        return (value, {"logits": logits}) if return_outputs else value

    return loss


def check_pretraining(
    stage: PretrainStage, *, model_asset: Asset, tokenizer: PreTrainedTokenizerBase, texts: list[str]
) -> str:
    """Everything the stage can get wrong, checked before any stage trains: the objective, the corpus filling a
    block, LoRA targets (on a weightless copy of the model). Returns the objective."""
    config = loading(model_asset, "config", lambda: AutoConfig.from_pretrained(model_asset.location))
    objective = pick_objective(config, stage.objective, tokenizer, model_asset.reference)
    pack_blocks(tokenizer, texts, stage.block_size)
    if stage.method == "lora":
        with torch.device("meta"):
            _lora_config(LM_CLASSES[objective].from_config(config), stage)
    return objective


def continue_pretraining(
    stage: PretrainStage,
    *,
    model_asset: Asset,
    trust_remote_code: bool,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    seed: int,
    out_dir: Path,
    resume_hint: str,
    precision: str = "auto",
) -> PretrainResult:
    """Train the language-model objective on the packed target corpus; save the adapted encoder to out_dir.

    It trains through the same Trainer as every run (sealed checkpoints, divergence guard, clean stop): a stage
    cut short resumes from its last good checkpoint in out_dir/checkpoints/pretrain when run again."""
    started = time.perf_counter()
    objective = check_pretraining(stage, model_asset=model_asset, tokenizer=tokenizer, texts=texts)
    blocks = pack_blocks(tokenizer, texts, stage.block_size)
    set_seed(seed)  # the new LM head (none in all-MiniLM-L6-v2) and the masking
    lm = loading(
        model_asset,
        "weights",
        lambda: LM_CLASSES[objective].from_pretrained(
            model_asset.location, trust_remote_code=trust_remote_code, use_safetensors=True
        ),
    )
    model = _with_lora(lm, stage) if stage.method == "lora" else lm
    splits = _split_blocks(blocks, stage.eval_fraction, seed)
    spec = TrainSpec(
        epochs=stage.epochs,
        max_steps=stage.max_steps,
        learning_rate=stage.learning_rate,
        batch_size=stage.batch_size,
        seed=seed,
        precision=precision,  # the recipe's train.precision: the same policy as every other training
        eval_strategy="epoch" if "eval" in splits else "no",
        metric_for_best="loss",
        group_by_length=False,  # every block has the same length
        checkpoint_steps=stage.checkpoint_steps,
        trainer={"prediction_loss_only": True},
    )
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=objective == "mlm", mlm_probability=stage.mlm_probability if objective == "mlm" else None
    )
    head = MLM_HEADS.get(str(getattr(lm.config, "model_type", ""))) if objective == "mlm" else None
    trainer = build_trainer(
        PhaseInputs(model=model, splits=splits, train=spec, collator=collator),
        tokenizer,
        None,
        out_dir,
        PHASE,
        loss=masked_positions_loss(head) if head is not None else None,
    )
    start = checkpoints.last_usable(out_dir / CHECKPOINTS_DIR / PHASE).checkpoint
    before = None if start is not None or "eval" not in splits else trainer.evaluate()["eval_loss"]
    if start is not None:
        log.info("pretrain: resuming from %s", start)
    with interruption.training():
        train_output = trainer.train(resume_from_checkpoint=str(start) if start else None)
    if stopped_on_request(trainer):
        saved = checkpoints.last_usable(out_dir / CHECKPOINTS_DIR / PHASE).checkpoint
        raise interruption.RunInterrupted(
            f"stopped at step {trainer.state.global_step} of continued pre-training; checkpoint saved: {saved}. "
            f"Resume with: {resume_hint}"
        )
    after = trainer.evaluate()["eval_loss"] if "eval" in splits else None
    if stage.method == "lora":
        lm = model.merge_and_unload()  # the updates folded into the weights: a plain encoder again
    _save_encoder(lm, model_asset, trust_remote_code, tokenizer, out_dir)
    metrics = {
        "objective": objective,
        "blocks": len(blocks),
        "block_size": stage.block_size,
        "train_blocks": len(splits["train"]),
        "eval_blocks": len(splits["eval"]) if "eval" in splits else 0,
        "lm_eval_loss_before": before,
        "lm_eval_loss_after": after,
        "lm_perplexity_after": math.exp(after) if after is not None and after < 50 else None,
        "masked_positions_only": head is not None,
        "resumed_from": str(start) if start else None,
        "steps": trainer.state.global_step,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **train_output.metrics,
        "stage_wall_seconds": round(time.perf_counter() - started, 2),
    }
    return PretrainResult(metrics=metrics, log_history=trainer.state.log_history)


def _lora_config(lm: Any, stage: PretrainStage) -> Any:
    return lora_config(
        lm,
        targets=stage.lora_targets,
        field="adapt.stages (pretrain).lora_targets",
        r=stage.lora_r,
        alpha=stage.lora_alpha,
        dropout=0.0,
        task_type=None,
    )


def _with_lora(lm: Any, stage: PretrainStage) -> Any:
    """LoRA on the encoder (methods.lora's set-up); the LM head outside it trains in full (it may be new), except
    the output projection tied to the input embeddings."""
    encoder_prefix = lm.base_model_prefix + "."
    tied = lm.get_input_embeddings().weight
    model = with_adapters(lm, _lora_config(lm, stage))
    for name, parameter in model.get_base_model().named_parameters():
        if not name.startswith(encoder_prefix) and parameter is not tied and "lora_" not in name:
            parameter.requires_grad = True
    return model


def _split_blocks(blocks: list[list[int]], eval_fraction: float, seed: int) -> dict[str, datasets.Dataset]:
    rows = datasets.Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks]})
    if len(rows) < 2:
        return {"train": rows}
    held_out = rows.train_test_split(test_size=max(1, round(eval_fraction * len(rows))), seed=seed)
    return {"train": held_out["train"], "eval": held_out["test"]}


def _save_encoder(
    lm: Any, asset: Asset, trust_remote_code: bool, tokenizer: PreTrainedTokenizerBase, out_dir: Path
) -> None:
    """The adapted encoder inside the checkpoint's own bare model, so what the LM model lacks (BERT's pooler,
    which BertForMaskedLM drops) keeps its pre-trained weights instead of starting random in finetune."""
    encoder = AutoModel.from_pretrained(asset.location, trust_remote_code=trust_remote_code, use_safetensors=True)
    result = encoder.load_state_dict(lm.base_model.state_dict(), strict=False)
    if result.unexpected_keys:
        raise RuntimeError(f"adapted encoder weights do not fit the base model: {result.unexpected_keys[:3]}")
    log.info("pretrain: kept the checkpoint's own %s", ", ".join(sorted(result.missing_keys)) or "nothing else")
    encoder.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
