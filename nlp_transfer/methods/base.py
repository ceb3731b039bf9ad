"""The Method protocol: how much of a pre-trained model trains, in which phases, and what the run folder holds.

A method is asked three things, in this order:
  prepare(model, task)  freeze, wrap or re-initialise; runs before the run folder exists, so bad settings fail early
  phases(model, context) the training phases, each built only when it starts (phase 2 starts from phase 1's head)
  save(model, run_dir)   write what predict needs: a plain model folder, or an adapter plus what rebuilds the model
and, optionally, check_data(prepared) when the method needs more of the tokenized data than the task checks
(contrastive: two examples of every label to pair): the pipeline calls it before the run folder exists.
Reading a model back goes by the files saved, not by the method (trained.LAYOUTS): a merged export of a LoRA run is a
plain folder whatever its recipe says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Precision
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.tasks.base import PreparedTask

log = logging.getLogger(__name__)


@dataclass
class PhaseContext:
    """What every phase may read: the tokenized task data, the tokenizer and the recipe's train settings."""

    prepared: PreparedTask
    tokenizer: PreTrainedTokenizerBase
    train: TrainSpec
    # Several processes: the main one runs the block first (filling a cache), the others then read it. The run
    # supplies it (core.distributed); methods know nothing of processes.
    main_first: Callable[[], AbstractContextManager[Any]] = nullcontext
    # The run's precision on its device (train.acceleration), for work a phase does outside the Trainer (probe
    # features). None: fp32.
    precision: Precision | None = None
    # Whether one pooled vector per example decides the task's output (Task.pooled_features): a probe may then
    # train its head on cached pooled features.
    pooled_features: bool = False


@dataclass
class PhaseInputs:
    model: nn.Module  # what the Trainer trains
    splits: Mapping[str, Any]  # train, eval and (when the recipe has one) test, in the form `model` reads
    train: TrainSpec  # this phase's hyperparameters
    collator: Any = None  # None: token ids padded per batch (DataCollatorWithPadding)
    info: dict[str, Any] = field(default_factory=dict)  # recorded in the phase's metrics (e.g. feature seconds)


@dataclass
class Phase:
    name: str
    build: Callable[[], PhaseInputs]


class Method(Protocol):
    # Optional, read with getattr: `phased = True` for a method that trains in several phases, each saved for a
    # resumed run to start from (sharded launches refuse it, train.sharding); `check_data(prepared)` (ARCHITECTURE.md).
    # The tasks (recipe task.name) the method can train, checked before anything loads (check_serves); None: every
    # task, as the method trains the task's own model and loss.
    serves: ClassVar[frozenset[str] | None]

    def __init__(self, config: Any) -> None: ...

    def prepare(self, model: nn.Module, task: Any) -> nn.Module: ...

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]: ...

    def save(self, model: nn.Module, run_dir: Path, *, tokenizer: PreTrainedTokenizerBase, base_model: str) -> None: ...


def check_serves(method: type[Method], method_name: str, task_name: str) -> None:
    """A method given a task it cannot train (contrastive pairs on regression targets) is refused in one line."""
    if method.serves is None or task_name in method.serves:
        return
    served = ", ".join(sorted(method.serves))
    raise UserError(
        f"method.name {method_name}: serves the tasks {served}, not {task_name}; use method full, lora or "
        f"unfreeze_last for a {task_name} task"
    )


def check_on_skeleton(method: Method, skeleton: nn.Module, task: Any) -> None:
    """The method's settings against the model's structure before any weight loads: prepare() runs on the
    meta-device skeleton (pretrained.skeleton), where freezing, wrapping and finding modules need names and shapes
    only. Its UserError (unfreeze_last beyond the depth, an unknown LoRA target, a probe layer out of range) is the
    answer. Anything else a weightless model cannot do is left to the real prepare(), which runs on the loaded one."""
    try:
        with torch.device("meta"), quiet_libraries():  # whatever prepare() builds (LoRA layers) is weightless too
            method.prepare(skeleton, task)
    except RuntimeError as err:  # what meta tensors cannot do (NotImplementedError, "Cannot copy out of meta
        # tensor"): the real prepare() runs on the loaded model and reports it there. Anything else is a bug.
        log.debug("prepare() on the skeleton: %s: %s", type(err).__name__, err)


def train_phase(model: nn.Module, context: PhaseContext, learning_rate: float | None, name: str = "train") -> Phase:
    """The common single phase: the Trainer trains `model` on the tokenized data."""
    spec = context.train.model_copy(update={"learning_rate": learning_rate or context.train.learning_rate})
    return Phase(name, lambda: PhaseInputs(model=model, splits=context.prepared.splits, train=spec))


def save_model_folder(model: nn.Module, run_dir: Path, *, tokenizer: PreTrainedTokenizerBase, base_model: str) -> None:
    """A plain transformers folder (config.json + model.safetensors + tokenizer): from_pretrained loads it anywhere."""
    tokenizer.save_pretrained(run_dir)
    model.save_pretrained(run_dir)  # type: ignore[operator]  # transformers 5 always writes safetensors


class WeightsMismatch(UserError):
    """A trained folder whose weight names are not the ones its model has: loading it would leave the missing ones
    at random values (a confident, meaningless answer). The reader adds what to do about the folder."""


def load_model_folder(run_dir: Path, task: Any) -> nn.Module:
    """The model of a plain trained folder, refused when its weights file lacks any weight the model has, or holds
    one it has not (a deleted head, renamed keys): transformers would only warn, and start those weights new."""
    model: nn.Module
    model, info = task.auto_model_class.from_pretrained(run_dir, use_safetensors=True, output_loading_info=True)
    check_weight_names(run_dir, missing=info.get("missing_keys", ()), unexpected=info.get("unexpected_keys", ()))
    mismatched = [str(entry[0]) for entry in info.get("mismatched_keys", ())]
    if mismatched:
        raise WeightsMismatch(f"{run_dir}: weights of the wrong shape for this model: {_listed(mismatched)}")
    return model


def check_weight_names(folder: Path, missing: Any, unexpected: Any) -> None:
    """One line naming the weights a trained folder lacks and those it holds that its model has not."""
    problems = []
    if missing:
        problems.append(f"missing weights {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected weights {_listed(unexpected)}")
    if problems:
        raise WeightsMismatch(f"{folder}: " + " and ".join(problems) + " (the weights do not match the model)")


def _listed(names: Any, shown: int = 5) -> str:
    names = sorted(str(name) for name in names)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def parameter_counts(model: nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total}
