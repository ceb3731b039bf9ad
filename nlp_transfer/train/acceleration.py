"""How a run uses the hardware: its precision (train.precision), torch.compile (train.compile), and the checks that
a launch's DeepSpeed settings can work. All of it becomes TrainingArguments fields, so the Trainer and accelerate do
the work; this module decides and checks, before anything is written.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from functools import cache
from pathlib import Path
from typing import Any

import torch

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Precision, resolve_precision, training_device
from nlp_transfer.recipe import TrainSpec

log = logging.getLogger(__name__)

# accelerate launch --mixed_precision (or a config file's mixed_precision) arrives as this variable.
LAUNCH_PRECISION = {"bf16": "bf16", "fp16": "fp16", "no": "fp32"}


def training_precision(spec: TrainSpec) -> Precision:
    """train.precision resolved on the device the Trainer will use; `auto` yields to accelerate launch's
    --mixed_precision when one was given, and an explicit choice must agree with it."""
    device = training_device(use_cpu=bool(spec.trainer.get("use_cpu", False)))
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if launched not in LAUNCH_PRECISION:
        raise UserError(
            f"accelerate launch --mixed_precision {launched}: nlp-transfer trains in fp32, bf16 or fp16; "
            "launch without it and set train.precision"
        )
    requested: str = spec.precision
    if launched != "no":
        if requested not in ("auto", LAUNCH_PRECISION[launched]):
            raise UserError(
                f"train.precision is {requested} but accelerate launch asks for {launched} (--mixed_precision or "
                "its config file's mixed_precision); make them agree, or set train.precision to auto"
            )
        requested = LAUNCH_PRECISION[launched]
    return resolve_precision(requested, device, "train.precision")


def acceleration_arguments(spec: TrainSpec) -> dict[str, Any]:
    """TrainingArguments fields for train.precision and train.compile, after checking they can work here."""
    check_deepspeed(spec)
    check_sub_batch_tokens(spec)
    fields = training_precision(spec).training_arguments()
    if spec.compile:
        check_compile()
        fields["torch_compile"] = True
    return fields


def check_sub_batch_tokens(spec: TrainSpec) -> None:
    """Under several processes every process must run as many forward/backward passes per step (each backward
    all-reduces), but a token budget cuts each process's shard into its own number of sub-batches."""
    if spec.sub_batch_tokens is not None and distributed.launched():
        raise distributed.CommonError(
            "train.sub_batch_tokens: cutting batches by a token budget works in one process (each process would "
            "take its own number of sub-batches); under accelerate launch remove it (the default sub-batches apply)"
        )


def check_deepspeed(spec: TrainSpec) -> None:
    """A DeepSpeed config (train.trainer.deepspeed, or a launch that asks for DeepSpeed) needs deepspeed installed
    and a readable config; found here rather than as an ImportError deep inside the Trainer."""
    config = spec.trainer.get("deepspeed")
    launched = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in {"1", "true", "yes"}
    if config is None and not launched:
        return
    where = "train.trainer.deepspeed" if config is not None else "accelerate launch (a DeepSpeed config)"
    if importlib.util.find_spec("deepspeed") is None:
        raise UserError(
            f"{where}: DeepSpeed is asked for but not installed; pip install deepspeed (on the GPU machines), or use "
            "configs/accelerate/fsdp.yaml or ddp.yaml, which need nothing more"
        )
    if isinstance(config, str):
        path = Path(config)
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"train.trainer.deepspeed: {path} is not a readable JSON DeepSpeed config ({err})") from err


@cache
def check_compile() -> None:
    """train.compile needs a torch that compiles here: TorchDynamo on this Python, and Inductor's compiler (a C++
    compiler on CPU, Triton on GPU). A tiny function is compiled once to find out (a few seconds), so a run never
    fails on it after minutes of preparation."""
    device = training_device(use_cpu=False)
    try:
        compiled = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2, dynamic=False)
        compiled(torch.ones(4, device=device))
    except (RuntimeError, OSError, ImportError) as err:  # TorchDynamo/Inductor errors are RuntimeErrors; no
        # compiler (OSError) or no Triton (ImportError)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"train.compile: torch {torch.__version__} cannot compile on this machine ({reason[:200]}); "
            "set train.compile to false"
        ) from err
