"""Load a tokenizer and a pre-trained model with the task's head, from a resolved asset; errors say which source."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import Asset, hub_offline
from nlp_transfer.recipe import ModelSpec

log = logging.getLogger(__name__)


def load_tokenizer(asset: Asset, spec: ModelSpec) -> PreTrainedTokenizerBase:
    tokenizer = loading(
        asset,
        "tokenizer",
        lambda: AutoTokenizer.from_pretrained(
            asset.location, revision=spec.revision, trust_remote_code=spec.trust_remote_code
        ),
    )
    if not tokenizer.is_fast:
        raise UserError(f"model '{asset.reference}': only fast tokenizers are supported; provide tokenizer.json")
    if tokenizer.pad_token is None:
        # GPT-2 style models have no pad token: reuse end-of-text, the usual choice (the model's attention mask and
        # pad_token_id tell it where each sequence really ends).
        if tokenizer.eos_token is None:
            raise UserError(f"model '{asset.reference}': the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    auto_class: Any, asset: Asset, spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, **task_kwargs: Any
) -> PreTrainedModel:
    """The pre-trained body with a new task head (weights as safetensors only: no pickle loading)."""
    config = loading(
        asset,
        "config",
        lambda: AutoConfig.from_pretrained(
            asset.location, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **task_kwargs
        ),
    )
    config.pad_token_id = tokenizer.pad_token_id
    if not has_head(auto_class, config):
        raise UserError(
            f"model '{asset.reference}': architecture '{config.model_type}' has no {auto_class.__name__} head; "
            "choose a model that supports this task (BERT, RoBERTa, DistilBERT, GPT-2, ...)"
        )
    if spec.trust_remote_code:
        log.warning("model.trust_remote_code is on: running code shipped with '%s'", asset.reference)
    return loading(
        asset,
        "weights",
        lambda: auto_class.from_pretrained(
            asset.location,
            config=config,
            revision=spec.revision,
            trust_remote_code=spec.trust_remote_code,
            use_safetensors=True,
            # A checkpoint fine-tuned for other labels (2 classes, the task has 28) keeps its body; its head, the
            # wrong shape, starts new, as a missing head does.
            ignore_mismatched_sizes=True,
        ),
    )


def loading(asset: Asset, what: str, load: Any) -> Any:
    """Run a from_pretrained call; turn its OSError/ValueError into one line that says where it looked."""
    try:
        return load()
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if asset.source == "hub" and not hub_offline():
            where = f"downloading '{asset.location}' from the Hugging Face Hub failed ({first})"
            fix = "check the id and your connection, or set HF_HUB_OFFLINE=1 and point model.name at a local folder"
        else:
            where = f"loading the {what} from {asset.location} ({asset.source}) failed ({first})"
            fix = "check that the folder was written by save_pretrained and holds safetensors weights"
        raise UserError(f"model '{asset.reference}': {where}; {fix}") from err


def has_head(auto_class: Any, config: Any) -> bool:
    """Whether transformers has `auto_class` (e.g. AutoModelForSequenceClassification) for this architecture: the
    public from_config, on the meta device (no memory, no weights), raises ValueError when it has not."""
    try:
        with torch.device("meta"):
            auto_class.from_config(config)
    except ValueError:
        return False
    return True
