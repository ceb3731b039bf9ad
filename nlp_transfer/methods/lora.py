"""LoRA through peft: low-rank updates in the attention projections, the pre-trained weights frozen, the task head
trained in full and saved with the adapter.

The run folder holds the adapter (adapter_config.json naming the base model, adapter_model.safetensors with the
LoRA weights and the head) and base_model_config.json (the base config with this task's labels and pad token), which
is what rebuilding the model needs. No config.json: transformers would take the folder for a full model.
`save_merged` also writes <run>/merged, a plain model with the updates folded into the weights.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar

from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors import safe_open
from torch import nn
from transformers import AutoConfig, PreTrainedTokenizerBase
from transformers.pytorch_utils import Conv1D

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.assets import resolve_model
from nlp_transfer.methods.architectures import architecture_of, head_module_names
from nlp_transfer.methods.base import (
    Phase,
    PhaseContext,
    WeightsMismatch,
    check_weight_names,
    save_model_folder,
    train_phase,
)
from nlp_transfer.methods.pretrained import check_model_folder
from nlp_transfer.recipe import LoraMethod

BASE_CONFIG_FILE = "base_model_config.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
MERGED_DIR = "merged"


def adaptable_module_names(model: nn.Module) -> list[str]:
    """Names of the linear layers LoRA can adapt, in full (`bert.encoder.layer.0.attention.self.query`)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear | Conv1D)]


def matches(name: str, target: str) -> bool:
    """peft's rule: a target names a module by its full name or by a dotted suffix of it."""
    return name == target or name.endswith("." + target)


def lora_config(
    model: nn.Module,
    *,
    targets: list[str] | None,
    field: str,
    r: int,
    alpha: float,
    dropout: float,
    task_type: str | None,
) -> LoraConfig:
    """The one way LoRA is set up (the lora method, and continued pre-training with method lora): `targets` (default:
    the architecture's) are checked against the linear layers of the model's body, and the head's layers are kept
    out of them; the head itself (every module outside the body) trains in full when `task_type` says to save it."""
    arch = architecture_of(model, "lora")
    head = head_module_names(model, arch, with_parameters_only=True)
    targets = targets or list(arch.lora_targets)
    # The head trains in full (modules_to_save), so it is never adapted as well.
    known = [n for n in adaptable_module_names(model) if not any(matches(n, h) or n.startswith(h + ".") for h in head)]
    missing = [t for t in targets if not any(matches(n, t) for n in known)]
    if missing:
        short = sorted({n.rsplit(".", 1)[-1] for n in known})
        hint = did_you_mean(missing[0].rsplit(".", 1)[-1], short)
        raise UserError(
            f"{field}: {', '.join(repr(m) for m in missing)} not found in the {arch_name(model)} model's body{hint}; "
            f"its linear layers are named: {', '.join(short)} (a dotted suffix such as attention.output.dense picks "
            "fewer)"
        )
    # peft matches by suffix: `dense` would also name the head's layers (BERT's pooler), so exclude those.
    in_head = [n for n in adaptable_module_names(model) if n not in known]
    return LoraConfig(
        task_type=task_type,  # SEQ_CLS / QUESTION_ANS: peft keeps the head trainable and saved
        r=r,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft annotates int; floats work
        lora_dropout=dropout,
        target_modules=targets,
        exclude_modules=in_head or None,
        modules_to_save=head if task_type is not None else None,  # e.g. BERT's pooler, DistilBERT's pre_classifier
        fan_in_fan_out=isinstance(
            model.get_submodule(next(n for n in known if matches(n, targets[0]))), Conv1D
        ),  # GPT-2 stores weights transposed
    )


def with_adapters(model: nn.Module, config: LoraConfig) -> PeftModel:
    """peft's get_peft_model, with what it warns held for the run log: under transformers 5 it reads the deprecated
    `is_gradient_checkpointing`, a FutureWarning on every LoRA run that the user can do nothing about."""
    with quiet_libraries():
        peft_model = get_peft_model(model, config)
    assert isinstance(peft_model, PeftModel)  # a LoraConfig never makes peft's mixed model
    return peft_model


def arch_name(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", type(model).__name__))


class Lora:
    # Every task: adapters train on the task's own loss.
    serves: ClassVar[frozenset[str] | None] = None

    def __init__(self, config: LoraMethod) -> None:
        self.config = config

    def prepare(self, model: Any, task: Any) -> nn.Module:
        config = lora_config(
            model,
            targets=self.config.target_modules,
            field="method.target_modules",
            r=self.config.r,
            alpha=self.config.alpha,
            dropout=self.config.dropout,
            task_type=task.peft_task_type,
        )
        return with_adapters(model, config)

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        return [train_phase(model, context, self.config.learning_rate)]

    def save(self, model: nn.Module, run_dir: Path, *, tokenizer: PreTrainedTokenizerBase, base_model: str) -> None:
        assert isinstance(model, PeftModel)
        tokenizer.save_pretrained(run_dir)
        # adapter_config.json names the base model: its hub id when one is known, not the local copy loaded here.
        model.peft_config[model.active_adapter].base_model_name_or_path = base_model
        # save_embedding_layers "auto" asks the Hub whether the base model's vocabulary was resized (a warning on
        # every offline save); runs here never resize it, and LoRA weights on embeddings are in the adapter anyway.
        model.save_pretrained(str(run_dir), save_embedding_layers=False)
        (run_dir / "README.md").unlink(missing_ok=True)  # peft's stub card; the run writes the real one
        base_config = model.get_base_model().config.to_dict()  # type: ignore[union-attr,operator]
        (run_dir / BASE_CONFIG_FILE).write_text(json.dumps(base_config, indent=2) + "\n", encoding="utf-8")
        if self.config.save_merged:
            merged = copy.deepcopy(model).merge_and_unload()
            save_model_folder(merged, run_dir / MERGED_DIR, tokenizer=tokenizer, base_model=base_model)

    @staticmethod
    def load(run_dir: Path, task: Any) -> nn.Module:
        adapter = json.loads((run_dir / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
        reference = adapter.get("base_model_name_or_path") or ""
        try:
            asset = resolve_model(reference, adapter.get("revision"), base_dir=None)
        except UserError as err:
            raise UserError(
                f"{run_dir / ADAPTER_CONFIG_FILE}: the base model of this adapter cannot be found ({err}); "
                "make it available or fix base_model_name_or_path"
            ) from err
        try:
            check_model_folder(asset)
        except UserError as err:
            raise UserError(f"{run_dir}: this adapter's base {err}") from err
        config = AutoConfig.from_pretrained(run_dir / BASE_CONFIG_FILE)
        # A base checkpoint with a head of another size (fine-tuned for other labels): the adapter brings the head.
        base = task.auto_model_class.from_pretrained(
            asset.location, config=config, use_safetensors=True, ignore_mismatched_sizes=True
        )
        try:
            model: nn.Module = PeftModel.from_pretrained(base, run_dir)
        except KeyError as err:  # peft's lookup of a head weight (modules_to_save) the adapter file lacks
            raise WeightsMismatch(
                f"{run_dir}: missing weights {err.args[0]} (the weights do not match the model)"
            ) from err
        # Missing adapter (LoRA) weights, peft only warns about: they would stay at their fresh initial values.
        expected = set(get_peft_model_state_dict(model))
        with safe_open(str(run_dir / ADAPTER_WEIGHTS_FILE), framework="pt") as weights:
            saved = set(weights.keys())
        check_weight_names(run_dir, missing=expected - saved, unexpected=saved - expected)
        return model
