"""The target domain's texts: the unlabelled corpus (only its text column is ever read), the labelled test set
(evaluation only), and the corpus packed into fixed-length blocks for continued pre-training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.data.loading import LoadedData, load_extra_split
from nlp_transfer.recipe import TargetDomain


@dataclass
class TargetTexts:
    texts: list[str]
    labels: list[Any] | None  # test set only; the corpus never carries labels
    sources: list[str]
    file_hashes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_corpus(target: TargetDomain, *, seed: int, data_root: Path | None, base_dir: Path | None) -> TargetTexts:
    """The unlabelled target texts. Every column but target.text is dropped as soon as the file is read, so a label
    column in the file (amazon_mds train.jsonl has one) cannot reach pseudo-labelling or training."""
    where = "adapt.target.corpus"
    loaded = load_extra_split(target.corpus, split="train", field=where, data_root=data_root, base_dir=base_dir)
    _require_column(loaded, "train", target.text, where, "text")
    rows = loaded.splits["train"].select_columns([target.text])
    texts, notes = _nonempty(rows[target.text], where)
    if target.max_corpus_samples is not None and len(texts) > target.max_corpus_samples:
        rows = datasets.Dataset.from_dict({"text": texts}).shuffle(seed=seed).select(range(target.max_corpus_samples))
        notes.append(f"corpus: random subset of {target.max_corpus_samples} of {len(texts)} texts (seed {seed})")
        texts = list(rows["text"])
    return TargetTexts(texts, None, loaded.sources["train"], loaded.file_hashes, notes)


def load_target_test(
    target: TargetDomain, *, seed: int, data_root: Path | None, base_dir: Path | None
) -> TargetTexts | None:
    """Labelled target texts for evaluation. Nothing in the training stages reads this."""
    if target.test is None:
        return None
    where = "adapt.target.test"
    loaded = load_extra_split(target.test, split="test", field=where, data_root=data_root, base_dir=base_dir)
    _require_column(loaded, "test", target.text, where, "text")
    _require_column(loaded, "test", target.label, where, "label")
    rows = loaded.splits["test"].filter(lambda row: isinstance(row[target.text], str) and row[target.text].strip())
    if len(rows) == 0:
        raise UserError(f"{where}: no non-empty texts in column '{target.text}'; point it at a file with texts")
    if target.max_test_samples is not None and len(rows) > target.max_test_samples:
        rows = rows.shuffle(seed=seed).select(range(target.max_test_samples))
    return TargetTexts(list(rows[target.text]), list(rows[target.label]), loaded.sources["test"], loaded.file_hashes)


def _require_column(loaded: LoadedData, split: str, column: str, where: str, field_name: str) -> None:
    rows = loaded.splits[split]
    if column not in rows.column_names:
        raise UserError(
            f"{where} ({', '.join(loaded.sources[split])}): column '{column}' (adapt.target.{field_name}) not found"
            f"{did_you_mean(column, rows.column_names)}; columns are: {', '.join(rows.column_names)}. "
            f"Fix adapt.target.{field_name}"
        )


def _nonempty(values: list[Any], where: str) -> tuple[list[str], list[str]]:
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        raise UserError(f"{where}: every text is empty; point it at a file of target-domain texts")
    notes = [f"corpus: skipped {len(values) - len(texts)} empty texts"] if len(texts) < len(values) else []
    return texts, notes


def pack_blocks(tokenizer: PreTrainedTokenizerBase, texts: list[str], block_size: int) -> list[list[int]]:
    """Texts joined end to end (a separator between them) and cut into blocks of exactly block_size tokens, each
    wrapped in the model's special tokens ([CLS] ... [SEP] for BERT, none for GPT-2). The last partial block is
    dropped: every block is full, so no padding is ever scored."""
    prefix, suffix = _special_tokens_around(tokenizer)
    room = block_size - len(prefix) - len(suffix)
    separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        if separator is not None:
            stream.append(separator)
    blocks = [prefix + stream[start : start + room] + suffix for start in range(0, len(stream) - room + 1, room)]
    if not blocks:
        raise UserError(
            f"adapt.target.corpus: {len(texts)} text(s) make {len(stream)} tokens, too few to fill one block of "
            f"{block_size}; add target text or lower the pretrain stage's block_size"
        )
    return blocks


def _special_tokens_around(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one text ([CLS] / [SEP], <s> / </s>, nothing for GPT-2), read
    from an encoding (transformers 5 fast tokenizers have no build_inputs_with_special_tokens)."""
    plain = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world")["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    return [], []
