"""The choices `nlp-transfer init` makes whatever the label shape: the proposal it fills in, the data section (the
files of each split, or held-out eval and test shares, and how to read them), the lengths and the training defaults."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlp_transfer.data.readers import SUFFIX_FORMATS
from nlp_transfer.init.profile import Profile, Source, _labels_beside, companion

LENGTHS = (32, 64, 128, 256)  # max_length candidates; texts longer than the last are read in windows
WINDOW = 256
MIN_STEPS = 500  # optimizer steps a small data set gets, at most MAX_EPOCHS epochs
MAX_EPOCHS = 20


@dataclass
class Proposal:
    task: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any]
    comments: dict[str, str] = field(default_factory=dict)  # "task.label" -> why
    about: list[str] = field(default_factory=list)  # header lines: what the data is
    notes: list[str] = field(default_factory=list)  # what init printed

    def say(self, key: str, why: str) -> None:
        self.comments[key] = why
        self.notes.append(f"{key}: {why}")


def _entry(source: Source, **extra: Any) -> Any:
    fields = {"path": source.reference}
    if source.format != SUFFIX_FORMATS.get(source.path.suffix.lower(), "text"):
        fields["format"] = source.format  # label_first lines, or a tab-separated .txt
    if source.class_of_file is not None:
        fields["label"] = source.class_of_file
    fields |= extra
    return fields["path"] if len(fields) == 1 else fields


def splits(profile: Profile, proposal: Proposal, options: Any) -> int:
    """data: train (and eval/test from a split column or files beside it, else held out); returns the training
    rows."""
    rows = _split_files(profile, proposal)
    data, source = proposal.data, profile.sources[0]
    if source.columns:
        data["columns"] = source.columns
    if options.delimiter:
        data["delimiter"] = options.delimiter
    if options.encoding:
        data["encoding"] = options.encoding
    elif source.encoding != "utf-8":
        data["encoding"] = source.encoding
        proposal.say("data.encoding", f"the file is not valid utf-8; read as {source.encoding} (or pass --encoding)")
    return rows


def _split_files(profile: Profile, proposal: Proposal) -> int:
    data, sources, source = proposal.data, profile.sources, profile.sources[0]
    split_column = next((c.name for c in profile.columns.values() if c.kind == "split"), None)
    if split_column is not None and len(sources) == 1:
        values = Counter(str(v).strip() for v in profile.rows[split_column])
        by_name = {v.lower(): v for v in values}
        if "train" in by_name:
            data["train"] = _entry(source, where={split_column: by_name["train"]})
            for split, words in (("eval", ("dev", "validation", "val", "valid")), ("test", ("test",))):
                found = next((by_name[w] for w in words if w in by_name), None)
                if found is not None:
                    data[split] = _entry(source, where={split_column: found})
            proposal.say("data.train", f"the '{split_column}' column names each row's split")
            return values[by_name["train"]]
    data["train"] = [_entry(s) for s in sources] if len(sources) > 1 else _entry(source, **_lines(source))
    for split in ("eval", "test"):
        beside = companion(source, split) if len(sources) == 1 else None
        if beside is not None:
            other = Source(beside, source.path.with_name(beside.rsplit("/", 1)[-1]), source.format)
            lines = _labels_beside(other.path, beside) if source.label_lines else None
            data[split] = _entry(other, **({"label_lines": lines} if lines else {}))
            proposal.say(f"data.{split}", "the file beside the training file")
    rows = len(profile.rows)
    if "test" not in data:
        fraction = 0.2 if rows < 1000 else 0.1
        data["test_fraction"] = fraction
        held = rows - round(rows * (1 - fraction))
        proposal.say(
            "data.test_fraction",
            f"no test file: {held:,} rows ({fraction:.0%}) are held out as the test split, scored once at the end on "
            "rows that picked nothing (the number to report)",
        )
        rows -= held
    if "eval" not in data:
        fraction = 0.2 if rows < 1000 else 0.1
        data["eval_fraction"] = fraction
        proposal.say("data.eval_fraction", f"no dev file: {fraction:.0%} of the rows are held out for evaluation")
        rows = round(rows * (1 - fraction))
    return rows


def _lines(source: Source) -> dict[str, Any]:
    return {"label_lines": source.label_lines} if source.label_lines else {}


def lengths(profile: Profile, text: str, pair: str | None, options: Any, proposal: Proposal) -> None:
    tokenizer, window = _tokenizer(options.model)
    sample = profile.rows.shuffle(seed=0).select(range(min(1000, len(profile.rows))))
    texts = [str(t or "") for t in sample[text]]
    pairs = [str(t or "") for t in sample[pair]] if pair else None
    lengths = [len(ids) for ids in tokenizer(texts, pairs, verbose=False)["input_ids"]]
    p95 = int(np.percentile(lengths, 95))
    fits = next((n for n in LENGTHS if n >= p95 and n <= window), None)
    if fits is not None:
        proposal.task["max_length"] = fits
        proposal.say("task.max_length", f"95% of the texts are at most {p95} tokens")
        return
    length = min(WINDOW, window)
    proposal.task |= {"max_length": length, "truncation": "windows", "stride": length // 4}
    proposal.say(
        "task.truncation",
        f"windows: 95% of the texts are up to {p95} tokens, more than {length}; each is read whole in overlapping "
        f"windows of {length} (the model's window is {window}: a larger max_length reads fewer, longer windows)",
    )


def _tokenizer(model: str) -> tuple[Any, int]:
    from transformers import AutoConfig, AutoTokenizer

    from nlp_transfer.data.assets import resolve_model

    asset = resolve_model(model, base_dir=None)
    tokenizer = AutoTokenizer.from_pretrained(asset.location)
    config = AutoConfig.from_pretrained(asset.location)
    window = int(getattr(config, "max_position_embeddings", 512) or 512)
    return tokenizer, min(window, 512)


def training(rows: int, options: Any, proposal: Proposal) -> None:
    from transformers import AutoConfig

    from nlp_transfer.data.assets import resolve_model

    batch = 32 if rows >= 2000 else 16
    steps = max(1, math.ceil(rows / batch))
    epochs = min(MAX_EPOCHS, max(3, math.ceil(MIN_STEPS / steps)))
    hidden = int(
        getattr(AutoConfig.from_pretrained(resolve_model(options.model, base_dir=None).location), "hidden_size", 768)
    )
    rate = 1e-4 if hidden <= 512 else 3e-5
    proposal.train |= {"epochs": epochs, "learning_rate": rate, "batch_size": batch, "seed": 42}
    proposal.say("train.epochs", f"{rows:,} training rows, {steps:,} steps per epoch: {epochs * steps:,} steps in all")
    why = (
        f"a small model (hidden size {hidden}) wants a higher rate than BERT-base's"
        if hidden <= 512
        else f"hidden size {hidden}: the rate BERT-size models fine-tune well at"
    )
    proposal.say("train.learning_rate", why)
