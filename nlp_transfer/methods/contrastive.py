"""Contrastive few-shot fine-tuning (the SetFit recipe) in two phases, both through the run's Trainer:

  embeddings  the encoder reads both texts of each pair drawn from the labelled set (pairs.py) and learns to place
              same-label texts close and different-label texts apart (cosine similarity against the pair's target)
  head        the encoder is frozen and read once (cached pooled features, as the probe does); the model's own head
              trains on those embeddings

A sentence encoder such as all-MiniLM-L6-v2 was trained this way on sentence pairs, so a few hundred pairs made
from a few dozen labelled examples move it much further than a few dozen classification steps would.

The run folder is a probe's: a plain model folder (encoder and head) plus probe.json saying how the head reads the
encoder (pooling, unit length), so predict, evaluate, export and push load it like any probe run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from nlp_transfer.methods.architectures import architecture_of
from nlp_transfer.methods.base import Phase, PhaseContext, PhaseInputs
from nlp_transfer.methods.features import MODEL_INPUTS, PooledClassifier, encode, resolve_pooling
from nlp_transfer.methods.pairs import Pair, check_pairable, draw_pairs, label_sets
from nlp_transfer.methods.probe import Probe, features_phase
from nlp_transfer.recipe import ContrastiveMethod
from nlp_transfer.tasks.base import PreparedTask


def cosine_loss(similarity: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """SetFit's CosineSimilarityLoss: the pair's cosine similarity regressed onto its target (1 same, 0 other)."""
    return nn.functional.mse_loss(similarity, target)


def margin_loss(similarity: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell et al.'s contrastive loss on cosine distance: similar pairs pulled to 0, others pushed past margin."""
    distance = 1.0 - similarity
    pulled = target * distance.pow(2)
    pushed = (1.0 - target) * nn.functional.relu(margin - distance).pow(2)
    return 0.5 * (pulled + pushed).mean()


LOSSES = {"cosine": cosine_loss, "contrastive": margin_loss}


class PairEncoder(nn.Module):
    """Phase embeddings: forward(input_ids (U, T), attention_mask (U, T), ..., first_index (B,), second_index (B,),
    labels (B,)): the U distinct texts of B pairs, encoded once each, pair i being texts first_index[i] and
    second_index[i]; labels are the target similarities.

    Holds only the encoder, so the Trainer's optimizer and checkpoints see the weights this phase trains."""

    accepts_loss_kwargs = False  # the loss is a mean over pairs: the Trainer scales it for gradient accumulation

    def __init__(self, encoder: nn.Module, pooling: str, loss: str, margin: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling, self.loss, self.margin = pooling, loss, margin

    def forward(
        self,
        first_index: torch.Tensor,
        second_index: torch.Tensor,
        labels: torch.Tensor | None = None,
        **inputs: Any,
    ) -> SequenceClassifierOutput:
        embeddings = encode(self.encoder, inputs, self.pooling, layer=-1).float()  # (U, H)
        first, second = embeddings[first_index], embeddings[second_index]  # (B, H) each
        similarity = nn.functional.cosine_similarity(first, second, dim=-1)  # (B,)
        loss = LOSSES[self.loss](similarity, labels.float(), self.margin) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=similarity)


class PairDataset(torch.utils.data.Dataset):
    """The drawn pairs over the tokenized training rows: each item is both texts' token ids and the target."""

    def __init__(self, split: Any, pairs: list[Pair]) -> None:
        columns = [c for c in MODEL_INPUTS if c in split.column_names]
        self.rows = split.select_columns(columns).to_dict()  # plain lists: per-item dataset access is slow
        self.columns = columns
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        return {
            "texts": {row: {c: self.rows[c][row] for c in self.columns} for row in (pair.first, pair.second)},
            "rows": (pair.first, pair.second),
            "similarity": pair.similarity,
        }


class PairCollator:
    """B pairs -> one padded batch of the U distinct texts they use, where each pair's texts sit in it
    (first_index, second_index), and B target similarities.

    A few dozen sentences make hundreds of pairs, so a batch of pairs holds the same sentence several times (at 8
    per class, 16 pairs name about 14 distinct sentences among their 32 texts): each is encoded once and its
    embedding shared by its pairs, whose gradients add up on it. The loss is that of encoding every text of every
    pair (bar dropout, which now draws one mask per sentence and batch), for a fraction of the encoder's work."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, multiple: int | None = None) -> None:
        self.pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple, return_tensors="pt")

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        texts = {row: text for item in items for row, text in item["texts"].items()}  # distinct rows, first seen first
        at = {row: position for position, row in enumerate(texts)}
        batch = dict(self.pad(list(texts.values())))
        batch["first_index"] = torch.tensor([at[item["rows"][0]] for item in items], dtype=torch.long)
        batch["second_index"] = torch.tensor([at[item["rows"][1]] for item in items], dtype=torch.long)
        batch["labels"] = torch.tensor([item["similarity"] for item in items], dtype=torch.float)
        return batch


class Contrastive:
    phased = True  # several phases, each saved for a resumed run (sharded launches refuse it: train.sharding)
    # Labelled tasks only: examples are paired as same-label or different-label (numbers and spans have no such pairs).
    serves: ClassVar[frozenset[str] | None] = frozenset({"classification", "multi_label"})

    def __init__(self, config: ContrastiveMethod) -> None:
        self.config = config

    def prepare(self, model: nn.Module, task: Any) -> nn.Module:
        arch = architecture_of(model, "contrastive")
        # Every weight trains (the encoder in phase embeddings, the head in phase head): the counts say so.
        model.requires_grad_(True)
        pooling = resolve_pooling(self.config.pooling, arch)
        return PooledClassifier(model, arch, pooling, layer=-1, normalize=self.config.normalize)

    def check_data(self, prepared: PreparedTask) -> None:
        """Before anything is written: every training example must have a same-label and an other-label partner."""
        train = prepared.splits["train"]
        check_pairable(label_sets(train["labels"]), prepared.label_names, "data.train")

    def phases(self, model: nn.Module, context: PhaseContext) -> list[Phase]:
        assert isinstance(model, PooledClassifier)
        config = self.config
        task_model = model.model

        def embeddings() -> PhaseInputs:
            train = context.prepared.splits["train"]
            sets = label_sets(train["labels"])
            pairs = draw_pairs(sets, config.pairs_per_example, seed=context.train.seed)
            spec = context.train.model_copy(
                update={
                    "learning_rate": config.learning_rate,
                    "epochs": config.epochs,
                    "max_steps": None,
                    # Pairs have no task metric to evaluate; the head phase evaluates and keeps the best epoch.
                    "eval_strategy": "no",
                    "early_stopping_patience": None,
                    # Pairs come in random order, so cutting a batch into length-sorted sub-batches saves no padding,
                    # and a whole batch shares more sentences between its pairs (PairCollator encodes each once).
                    "group_by_length": False,
                    # Pair items (first, second, similarity) are not forward() arguments: the collator builds those.
                    "trainer": {**context.train.trainer, "remove_unused_columns": False},
                }
            )
            encoder = PairEncoder(task_model.base_model, model.pooling, config.loss, config.margin)
            return PhaseInputs(
                model=encoder,
                splits={"train": PairDataset(train, pairs)},
                train=spec,
                collator=PairCollator(context.tokenizer, spec.length_multiple(context.precision)),
                info={"pairs": len(pairs), "same_label_pairs": sum(p.similarity > 0 for p in pairs)},
            )

        head = features_phase(
            task_model,
            context,
            pooling=model.pooling,
            layer=-1,
            normalize=model.normalize,
            learning_rate=config.head_learning_rate,
            epochs=config.head_epochs,
            name="head",
        )
        return [Phase("embeddings", embeddings), head]

    @staticmethod
    def save(model: nn.Module, run_dir: Path, **context: Any) -> None:
        Probe.save(model, run_dir, **context)  # model folder + probe.json (pooling, unit length)
