"""The choices `nlp-transfer init` makes from a data profile: columns, task and label shape, splits, lengths and
training defaults, each with the reason the recipe's comment gives."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from nlp_transfer.core.errors import UserError
from nlp_transfer.init.defaults import Proposal, lengths, splits, training
from nlp_transfer.init.profile import (
    LABEL_HINTS,
    Profile,
    label_counts,
    names_file,
)
from nlp_transfer.tasks.classification import normalise_label
from nlp_transfer.tasks.label_names import read_label_names

SKEW = 3.0  # largest class (label) over smallest at or above this: the data is called skewed
# The skew from which balanced weights are proposed, by what is counted (README, Measured results). Labels: from any
# skew (GoEmotions, 10,000 comments, one epoch: test macro-F1 0.07 without weights, the model learns the base rates
# only; 0.34 with them and per-label thresholds). Classes: only when far apart (TweetEval emotion, 4.8x: weights cost
# 3.6 points of test macro-F1, 0.743 vs 0.779), as a class 10x rarer than the commonest is one a model without
# weights can learn to ignore.
WEIGHTS_FROM_SKEW = {"class": 10.0, "label": SKEW}


def propose(profile: Profile, options: Any) -> Proposal:
    columns = profile.columns
    squad = {"question", "context", "answers"}
    if squad <= set(columns):
        return _qa(profile, options)
    if options.task == "qa":
        raise UserError(
            f"--task qa: question answering reads question, context and answers columns (SQuAD layout), but the "
            f"columns are {', '.join(columns)}; drop --task qa, or pass a SQuAD-style file"
        )
    text, pair = _texts(profile, options)
    labels = _labels(profile, options, {text, pair})
    proposal = Proposal(task={}, data={}, train={})
    proposal.task["name"] = _shape(profile, labels, options.task, proposal)
    proposal.task["text"] = text
    if pair:
        proposal.task["text_pair"] = pair
        proposal.say("task.text_pair", "a second text column: the model reads the two as a pair")
    _label_fields(profile, labels, proposal)
    train_rows = splits(profile, proposal, options)
    lengths(profile, text, pair, options, proposal)
    training(train_rows, options, proposal)
    return proposal


# ---- columns -----------------------------------------------------------------------------------------------------


def _texts(profile: Profile, options: Any) -> tuple[str, str | None]:
    columns = profile.columns
    if options.text:
        for name in (options.text, options.text_pair):
            if name and name not in columns:
                raise UserError(f"--text/--text-pair {name}: no such column; the columns are {', '.join(columns)}")
        return options.text, options.text_pair
    texts = sorted((c for c in columns.values() if c.kind == "text"), key=lambda c: -c.mean_words)
    if not texts:
        raise UserError(f"DATA_FILE: no column holds text (columns: {', '.join(columns)}); name it with --text COLUMN")
    if len(texts) > 1 and texts[1].mean_words >= 0.5 * texts[0].mean_words:
        shown = ", ".join(f"{c.name} ({c.mean_words:.0f} words on average)" for c in texts)
        raise UserError(
            f"DATA_FILE: several columns hold text: {shown}; name the text with --text COLUMN (and the second text "
            "of a pair with --text-pair COLUMN)"
        )
    return texts[0].name, options.text_pair


def _labels(profile: Profile, options: Any, texts: set[str | None]) -> list[str]:
    columns = profile.columns
    if options.label:
        missing = [name for name in options.label if name not in columns]
        if missing:
            raise UserError(f"--label {','.join(missing)}: no such column; the columns are {', '.join(columns)}")
        return list(options.label)
    candidates = [c for c in columns.values() if c.name not in texts and c.kind not in ("id", "split", "empty")]
    hinted = [c.name for c in candidates if c.name.lower() in LABEL_HINTS]
    if len(hinted) == 1:
        return hinted
    found = hinted or [c.name for c in candidates]
    if len(found) == 1:
        return found
    if not found:
        raise UserError(
            f"DATA_FILE: no column looks like a label (columns: {', '.join(columns)}); name it with --label"
        )
    raise UserError(
        f"DATA_FILE: several columns could be the label: {', '.join(found)}; name it with --label COLUMN (several "
        f"for one model: --label {','.join(found)}: 0/1 columns make a multi-label task, numbers a regression "
        "with one output each)"
    )


# ---- label shape -------------------------------------------------------------------------------------------------


def _shape(profile: Profile, labels: list[str], forced: str | None, proposal: Proposal) -> str:
    rows = profile.rows
    if len(labels) > 1:
        columns = {name: [v for v in rows[name] if v is not None] for name in labels}
        binary = all(
            {str(v).strip().lower() for v in vs} <= {"0", "1", "0.0", "1.0", "true", "false"} for vs in columns.values()
        )
        numeric = all(_all_numbers(vs) for vs in columns.values())
        if forced == "regression" and not numeric:
            raise UserError(
                f"--task regression: --label {','.join(labels)} are not all numbers; regression predicts numbers: "
                "name numeric columns, or drop --task"
            )
        shape = forced or ("multi_label" if binary else "regression" if numeric else "")
        if not shape:
            raise UserError(
                f"--label {','.join(labels)}: several label columns must all be 0/1 (one per label: multi-label) or "
                "all numbers (regression); say which with --task"
            )
        why = "one 0/1 column per label" if shape == "multi_label" else "numeric columns: one output each"
        proposal.say("task.name", f"{shape}: {why}")
        return shape
    values = [v for v in rows[labels[0]] if v is not None and str(v).strip() != ""]
    if not values:
        raise UserError(f"--label {labels[0]}: the column is empty; name the label column with --label")
    if forced == "regression" and not _all_numbers(values):
        sample = next(v for v in values if not _all_numbers([v]))
        raise UserError(
            f"--task regression: the label column {labels[0]} holds text ({str(sample)[:30]!r}), not numbers; "
            "regression predicts numbers: drop --task regression to classify, or name a numeric column with --label"
        )
    if forced:
        proposal.say("task.name", f"{forced} (--task)")
        return forced
    if all(isinstance(v, list | tuple) for v in values):
        proposal.say("task.name", "multi_label: each row holds a list of labels")
        return "multi_label"
    delimited = sum("," in str(v) for v in values)
    if delimited >= max(1, len(values) // 100) and all(
        len(part.split()) <= 3 for v in values for part in str(v).split(",")
    ):
        proposal.say("task.name", f"multi_label: {delimited:,} of {len(values):,} rows list several labels ('a,b')")
        return "multi_label"
    if _all_numbers(values):
        numbers = np.asarray([float(v) for v in values])
        distinct = len(set(numbers.tolist()))
        if np.all(numbers == np.round(numbers)) and distinct <= 20:
            # Values from 1 up look like a scale (stars, a score); from 0 up like class ids.
            hint = "; to predict the number instead: --task regression" if numbers.min() >= 1 and distinct > 2 else ""
            proposal.say("task.name", f"classification: {distinct} whole-number values{hint}")
            return "classification"
        proposal.say("task.name", f"regression: numbers ({distinct:,} distinct values)")
        return "regression"
    distinct = len(set(map(str, values)))
    if distinct > max(50, len(values) // 2):
        raise UserError(
            f"--label {labels[0]}: {distinct:,} distinct values in {len(values):,} rows: not a label column; name the "
            "label with --label"
        )
    if distinct < 2:
        raise UserError(f"--label {labels[0]}: every row has the same label; a classifier needs at least two")
    proposal.say("task.name", f"classification: {distinct} classes")
    return "classification"


def _all_numbers(values: list[Any]) -> bool:
    try:
        return all(not isinstance(v, bool) and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _label_fields(profile: Profile, labels: list[str], proposal: Proposal) -> None:
    task, rows, source = proposal.task, profile.rows, profile.sources[0]
    task["label"] = labels if len(labels) > 1 else labels[0]
    if task["name"] == "regression":
        numbers = {name: np.asarray([float(v) for v in rows[name] if v is not None]) for name in labels}
        proposal.about.append(
            "targets: " + ", ".join(f"{n} mean {v.mean():.3g}, std {v.std():.3g}" for n, v in numbers.items())
        )
        return
    if task["name"] == "classification":
        counts = label_counts(list(rows[labels[0]]))
        ids = [v for v in map(normalise_label, counts) if isinstance(v, int)]
        if len(ids) == len(counts) and min(ids) >= 0 and (names := names_file(source, max(ids) + 1)):
            task["labels_file"] = names
            proposal.say("task.labels_file", f"names the ids {min(ids)}..{max(ids)}")
        _balance(_named(dict(counts), task.get("labels_file"), profile), "class", proposal)
        return
    if len(labels) > 1:  # one 0/1 column per label
        positives = {name: sum(str(v).strip().lower() in {"1", "1.0", "true"} for v in rows[name]) for name in labels}
    else:
        items: Counter[str] = Counter()
        for value in rows[labels[0]]:
            parts = value if isinstance(value, list | tuple) else str(value or "").split(",")
            items.update(str(p).strip() for p in parts if str(p).strip())
        positives = dict(items)
        ids = [v for v in map(normalise_label, items) if isinstance(v, int)]
        if ids and len(ids) == len(items) and (names := names_file(source, max(ids) + 1)):
            task["labels_file"] = names
            proposal.say("task.labels_file", f"names the label ids 0..{max(ids)}")
    task["thresholds"] = "per_label"
    proposal.say("task.thresholds", "each label's own decision threshold, tuned on the eval split")
    _balance(_named(positives, task.get("labels_file"), profile), "label", proposal)


def _named(counts: dict[str, int], names_reference: str | None, profile: Profile) -> dict[str, int]:
    """Counts by label name when a names file names the ids (for the recipe's header)."""
    if names_reference is None:
        return counts
    path = profile.sources[0].path.with_name(names_reference.rsplit("/", 1)[-1])
    try:
        names = read_label_names(path, "labels file")
    except UserError:
        return counts
    return {names[int(k)] if str(k).isdigit() and int(k) < len(names) else k: v for k, v in counts.items()}


def _balance(counts: dict[str, int], what: str, proposal: Proposal) -> None:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    total = sum(counts.values()) or 1
    shares = ", ".join(f"{name} {count / total:.0%}" for name, count in ordered[:6])
    more = f" (+{len(ordered) - 6} more)" if len(ordered) > 6 else ""
    proposal.about.append(f"{what}es: {shares}{more}" if what == "class" else f"labels: {shares}{more}")
    skew = ordered[0][1] / max(ordered[-1][1], 1)
    if skew >= WEIGHTS_FROM_SKEW[what]:
        proposal.task["class_weights"] = "balanced"
        proposal.say(
            "task.class_weights",
            f"the commonest {what} is {skew:.0f}x the rarest ({ordered[0][0]} {ordered[0][1]:,}, {ordered[-1][0]} "
            f"{ordered[-1][1]:,}): rare {what}es weigh more; the best checkpoint is picked on macro-F1",
        )
    elif skew >= SKEW:
        proposal.say(
            "task.class_weights",
            f"none: the classes are {skew:.1f}x apart, where weights measured worse (TweetEval emotion, 4.8x); "
            "balanced to compare",
        )
        proposal.task["class_weights"] = "none"


def _qa(profile: Profile, options: Any) -> Proposal:
    proposal = Proposal(task={"name": "qa", "max_length": 384, "stride": 128}, data={}, train={})
    proposal.say("task.name", "qa: question, context and answers columns (SQuAD layout)")
    rows = splits(profile, proposal, options)
    training(rows, options, proposal)
    proposal.about.append(f"{len(profile.rows):,} questions")
    return proposal
