"""Token classification: a tag per word (named entities, chunks, part-of-speech), everything the task means in one
package: reading and normalising tags (tags, sentences), sub-word alignment and windows (alignment), scores
(scores: seqeval, strict IOB2) and the Task itself (here).

Words are tokenized pre-split; the first sub-word of each word carries its label (or every sub-word, with
label_all_subwords) and the rest are ignored by the loss. A sentence longer than max_length becomes overlapping
windows of whole words; evaluation and predict average each word's logits over the windows that read it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import datasets
import torch
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, PreTrainedTokenizerBase

from nlp_transfer.data.cache import cache_key, cached_map, split_key, tokenizer_fingerprint
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import TokenClassificationTask
from nlp_transfer.tasks.base import PreparedTask
from nlp_transfer.tasks.input_kinds import InputKind
from nlp_transfer.tasks.predictions import Decoder, ModelFacts
from nlp_transfer.tasks.results import TaskResults
from nlp_transfer.tasks.token_classification import report
from nlp_transfer.tasks.token_classification.alignment import IGNORED, NO_WORD, encode_words, token_labels
from nlp_transfer.tasks.token_classification.predictions import tag_rows
from nlp_transfer.tasks.token_classification.samples import WORDS
from nlp_transfer.tasks.token_classification.scores import TagMetrics
from nlp_transfer.tasks.token_classification.sentences import (
    check_known,
    normalised,
    read_split,
    resolve_scheme,
)
from nlp_transfer.tasks.token_classification.tags import label_list, split_tag


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled tokens: logits (B, T, K), labels (B, T) with IGNORED elsewhere."""
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten().to(logits.device), ignore_index=IGNORED
    )


def token_collator(
    tokenizer: PreTrainedTokenizerBase, multiple: int | None = None
) -> DataCollatorForTokenClassification:
    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORED, pad_to_multiple_of=multiple)


class TokenClassification:
    auto_model_class: ClassVar[Any] = AutoModelForTokenClassification
    peft_task_type: ClassVar[str] = "TOKEN_CLS"
    pipeline_tag: ClassVar[str] = "token-classification"
    pooled_features: ClassVar[bool] = False  # every token has its own output: nothing to pool
    predict_example: ClassVar[str] = '"Angela Merkel visited Paris."'
    padding_side: ClassVar[str | None] = None  # the tokenizer's own
    # Pre-split words: byte-level BPE tokenizers (RoBERTa, GPT-2) must read each word as if a space preceded it,
    # or a word inside a sentence gets other tokens than in running text (methods.pretrained.load_tokenizer).
    tokenizer_options: ClassVar[dict[str, Any]] = {"add_prefix_space": True}

    results: ClassVar[TaskResults] = report  # its baseline, view, usage example and card lines
    inputs: ClassVar[InputKind] = WORDS  # what its model reads and returns; export checks it on samples
    corrects_label_prior: ClassVar[bool] = False  # an adapted model's label_prior.json shifts its logits
    does: ClassVar[str] = "tags the words of"  # what its model does with texts, for messages

    @staticmethod
    def decoder(facts: ModelFacts) -> Decoder:
        return tag_rows(facts.label_names, plain=facts.settings.get("tag_scheme") == "none")

    def __init__(self, config: TokenClassificationTask) -> None:
        self.config = config

    def prepare(self, data: LoadedData, tokenizer: PreTrainedTokenizerBase, pad_to_max_length: bool) -> PreparedTask:
        config = self.config
        read = {name: read_split(split, name, data, config) for name, split in data.splits.items()}
        scheme = resolve_scheme(config, read)
        tags = {name: normalised(sentences, scheme, name, data) for name, sentences in read.items()}
        labels = label_list(config.labels, tags["train"], scheme)
        for name, split_tags in tags.items():
            check_known(split_tags, read[name].places, labels, config.labels is not None, name, data)
        label_ids = {tag: i for i, tag in enumerate(labels)}
        notes = [f"tags: {scheme.upper() if scheme != 'none' else 'plain (no entities)'}; labels {', '.join(labels)}"]
        if config.tag_scheme == "auto" and scheme in ("iob1", "bioes"):
            notes.append(f"tags read as {scheme.upper()} and converted to IOB2 (task.tag_scheme forces a scheme)")
        settings = {
            "task": "token_classification",
            "labels": labels,
            "scheme": scheme,
            "max_length": config.max_length,
            "stride": config.stride,
            "label_all_subwords": config.label_all_subwords,
            "pad_to_max_length": pad_to_max_length,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "columns": [config.tokens, config.tags, config.text, config.entities],
            "layout": 2,  # bump when the window columns change
        }
        inside_of = {label_ids[t]: label_ids.get("I-" + split_tag(t)[1], label_ids[t]) for t in labels if t[:2] == "B-"}
        tokenized, hits, keys = datasets.DatasetDict(), {}, {}
        for name, sentences in read.items():
            rows = datasets.Dataset.from_dict(
                {"words": sentences.words, "tag_ids": [[label_ids[t] for t in s] for s in tags[name]]}
            )

            def tokenize(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
                return self._windows(batch, indices, tokenizer, pad_to_max_length, inside_of)

            keys[name] = cache_key(split_key(data, name), settings)
            tokenized[name], hits[name] = cached_map(
                rows, tokenize, key=keys[name], description=f"Tokenizing {name}", with_indices=True
            )
        counts = ", ".join(f"{n} {len(read[n].words):,} sentences / {len(s):,} windows" for n, s in tokenized.items())
        notes.append(f"windows of at most {config.max_length} tokens: {counts}")

        def metrics_for(dataset: datasets.Dataset) -> TagMetrics:
            return TagMetrics(dataset, labels, scheme)

        return PreparedTask(
            splits=tokenized,
            model_kwargs={
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": label_ids,
            },
            batch_metrics_for=metrics_for,
            label_names=labels,
            notes=notes,
            cache_hits=hits,
            keys=keys,
            resolved={"tag_scheme": scheme, "labels": labels},
            loss=token_loss,
            collator=token_collator,
        )

    def _windows(
        self,
        batch: dict[str, list[Any]],
        indices: list[int],
        tokenizer: Any,
        pad_to_max_length: bool,
        inside_of: dict[int, int],
    ) -> dict[str, list[Any]]:
        """Windows with labels, plus what evaluation needs: the sentence (its row in the split), per token the word
        it gives (word_ids), the sentence's gold tag ids and (on its first window) its words, for the report."""
        config = self.config
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
        rows: dict[str, list[Any]] = {n: [] for n in (*names, "labels", "sentence", "word_ids", "gold", "words")}
        for window in encode_words(tokenizer, batch["words"], config.max_length, config.stride):
            tag_ids = batch["tag_ids"][window.sentence]
            labels = token_labels(window, tag_ids, config.label_all_subwords, inside_of)
            encoding, word_ids = window.encoding, window.word_ids
            if pad_to_max_length:
                encoding = dict(tokenizer.pad(encoding, padding="max_length", max_length=config.max_length))
                extra = config.max_length - len(labels)
                labels, word_ids = labels + [IGNORED] * extra, word_ids + [NO_WORD] * extra
            for n in names:
                rows[n].append(list(encoding[n]))
            rows["labels"].append(labels)
            rows["sentence"].append(indices[window.sentence])
            rows["word_ids"].append(word_ids)
            rows["gold"].append(list(tag_ids))
            rows["words"].append(list(batch["words"][window.sentence]) if window.first_word == 0 else [])
        return rows


__all__ = ["TokenClassification", "token_collator", "token_loss"]
