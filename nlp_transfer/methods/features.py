"""Pooled features of a frozen encoder, computed once and cached, and the two ways a probe head reads them.

A probe's encoder never changes, so running it every epoch repeats the same work. extract_features() runs it once
per example (eval mode, no autograd, batches sorted by length so there is almost no padding) and caches the pooled
vectors on disk, keyed by the encoder's weights, the pooling, the layer and the tokenized data. HeadOnFeatures then
trains the model's own head on those vectors; because it holds the very same head modules, the trained head is
already in the task model that the run saves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from contextlib import nullcontext
from typing import Any

import datasets
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils.logging import tqdm  # follows transformers' progress-bar switch

from nlp_transfer.core.hardware import Precision
from nlp_transfer.data.cache import cache_root
from nlp_transfer.methods.architectures import Architecture, head_modules
from nlp_transfer.tasks.text_inputs import DOCUMENT

log = logging.getLogger(__name__)

EXTRACTION_BATCH = 64
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def resolve_pooling(pooling: str, arch: Architecture) -> str:
    return arch.native_pooling if pooling == "native" else pooling


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, H) token states -> (B, H) one vector per example."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    if pooling == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "last":  # rightmost real token, whatever the padding side (as GPT-2's own head does)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        last = (positions * attention_mask).argmax(dim=-1)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}")


def encode(
    base_model: nn.Module, inputs: dict[str, torch.Tensor], pooling: str, layer: int, normalize: bool = False
) -> torch.Tensor:
    """Run the encoder on a batch and pool the states of one layer: (B, H), of unit length with `normalize` (what a
    sentence encoder trained on cosine similarities is read as)."""
    wanted = {k: v for k, v in inputs.items() if k in MODEL_INPUTS}
    outputs = base_model(**wanted, output_hidden_states=layer != -1)
    hidden = outputs.last_hidden_state if layer == -1 else outputs.hidden_states[layer]
    pooled = pool(hidden.float(), inputs["attention_mask"], pooling)  # pooled in fp32 (under autocast too)
    return nn.functional.normalize(pooled, dim=-1) if normalize else pooled


class PooledClassifier(nn.Module):
    """A task model read through a chosen pooling and layer: what a probe with non-native pooling trains and predicts.

    forward() takes token ids like the task model; only the head modules of `model` receive gradients in a probe.
    """

    def __init__(self, model: nn.Module, arch: Architecture, pooling: str, layer: int, normalize: bool = False) -> None:
        super().__init__()
        self.model: Any = model
        self.arch, self.pooling, self.layer, self.normalize = arch, pooling, layer, normalize

    def forward(self, labels: torch.Tensor | None = None, **inputs: Any) -> SequenceClassifierOutput:
        pooled = encode(self.model.base_model, inputs, self.pooling, self.layer, self.normalize)  # (B, H)
        logits = self.arch.classify_pooled(head_modules(self.model, self.arch), pooled)  # (B, K)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


class HeadOnFeatures(nn.Module):
    """The task model's head, trained on cached pooled features: forward(features (B, H), labels (B,)).

    It holds the task model's own head modules (the very same objects, so the trained head is in the model the run
    saves), registered here and nothing else: the optimizer, checkpoints and .train()/.eval() see just the head, and
    a replica (nn.DataParallel on several GPUs) carries everything forward() reads."""

    def __init__(self, arch: Architecture, head: dict[str, nn.Module]) -> None:
        super().__init__()
        self.head = nn.ModuleDict(head)
        self.arch = arch

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        logits = self.arch.classify_pooled(self.head, features)  # (B, K)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def extract_features(
    base_model: nn.Module,
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    pooling: str,
    layer: int,
    encoder_fingerprint: str,
    data_key: str,
    precision: Precision | None = None,
    multiple: int | None = None,
    normalize: bool = False,
) -> tuple[FeatureDataset, bool]:
    """Pooled features for every example of a tokenized split, from the cache when possible. Returns (data, hit).

    The encoder runs in `precision` (the run's: bf16 autocast where the hardware does it), which the cache key
    records: bf16 features differ from fp32 ones in the third digit. `multiple`: each batch's length rounded up to
    a multiple of that many tokens, as training rounds it (train.pad_to_multiple_of; the features are the same up to
    the precision's rounding, so the cache key ignores it). `normalize`: unit-length features."""
    precision_name = precision.name if precision is not None else "fp32"
    identity = {"encoder": encoder_fingerprint, "pooling": pooling, "layer": layer, "data": data_key}
    identity |= {"precision": precision_name} if precision_name != "fp32" else {}
    key = json.dumps(identity | ({"normalize": True} if normalize else {}), sort_keys=True)
    entry = cache_root() / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"
    if entry.is_file():
        tensors = load_file(str(entry))
        return FeatureDataset(tensors), True
    tensors = {"features": _run_encoder(base_model, split, tokenizer, pooling, layer, precision, multiple, normalize)}
    if "labels" in split.column_names:
        # class ids (long); multi-label 0/1 rows and regression targets (float) keep their type and shape
        tensors["labels"] = torch.tensor(split["labels"])
    if DOCUMENT in split.column_names:  # windows: which text each row came from, for pooling at evaluation
        tensors[DOCUMENT] = torch.tensor(split[DOCUMENT], dtype=torch.long)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = entry.with_name(f".{entry.name}.{uuid.uuid4().hex}")
    try:
        save_file(tensors, str(staging))
        os.replace(staging, entry)  # a killed write never leaves a half entry
    except OSError as err:
        log.warning("feature cache not written (%s); the features are still used", err)
        staging.unlink(missing_ok=True)
    return FeatureDataset(tensors), False


@torch.inference_mode()
def _run_encoder(
    base_model: nn.Module,
    split: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    pooling: str,
    layer: int,
    precision: Precision | None,
    multiple: int | None,
    normalize: bool,
) -> torch.Tensor:
    was_training = base_model.training
    base_model.eval()  # no dropout: the features a deployed model sees
    device = next(base_model.parameters()).device
    columns = [c for c in MODEL_INPUTS if c in split.column_names]
    rows = split.select_columns(columns).to_dict()  # plain lists: per-batch dataset access is slow
    lengths = [len(ids) for ids in rows["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)  # similar lengths together: almost no padding
    collate = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple, return_tensors="pt")
    pooled = torch.empty(0)
    progress = tqdm(total=len(order), desc="Encoding features", unit="examples")
    for start in range(0, len(order), EXTRACTION_BATCH):
        index = order[start : start + EXTRACTION_BATCH]
        examples = [{c: rows[c][i] for c in columns} for i in index]
        batch = {k: v.to(device) for k, v in collate(examples).items()}
        with precision.autocast() if precision is not None else nullcontext():
            vectors = encode(base_model, batch, pooling, layer, normalize).float().cpu()  # (b, H)
        if pooled.numel() == 0:
            pooled = torch.empty(len(order), vectors.shape[1])
        pooled[torch.tensor(index)] = vectors
        progress.update(len(index))
    progress.close()
    base_model.train(was_training)
    return pooled


class FeatureDataset(torch.utils.data.Dataset):
    """Rows of pooled features (and labels): what HeadOnFeatures trains and evaluates on. A windowed split also
    carries each row's text (`documents`), which evaluation reads to pool windows and the model never sees."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.documents = tensors[DOCUMENT].tolist() if DOCUMENT in tensors else None

    def __len__(self) -> int:
        return len(self.tensors["features"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[index] for name, tensor in self.tensors.items() if name != DOCUMENT}


def encoder_fingerprint(base_model: nn.Module) -> str:
    """Hash of the encoder's weights: features depend on nothing else the model holds."""
    digest = hashlib.sha256()
    for name, tensor in sorted(base_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
