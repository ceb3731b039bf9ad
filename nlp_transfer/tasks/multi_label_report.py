"""What a finished multi-label run says about its model: the better of two constant answers it must beat, F1 per
label at its decision thresholds, and its card lines (each label's threshold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nlp_transfer.recipe import MultiLabelTask
from nlp_transfer.tasks import multi_label
from nlp_transfer.tasks.evaluations import Evaluation, check_text_options, column, usable_texts
from nlp_transfer.tasks.metrics import multi_label_metrics
from nlp_transfer.tasks.results import (
    Canvas,
    CardFacts,
    Figure,
    View,
    ViewInputs,
    card_number,
    no_example,
    split_labels,
)
from nlp_transfer.tasks.text_inputs import describe_inputs, long_texts
from nlp_transfer.tasks.thresholds import THRESHOLDS_FILE, Decisions

example = no_example  # the card shows the pipeline's generic usage example


def baseline(prepared: Any) -> dict[str, Any]:
    """The better of two constant answers on the eval split: no label for any text, or every label a majority of
    the training texts carry (with GoEmotions-like data, usually none: then "no label")."""
    train, gold = split_labels(prepared, "train"), split_labels(prepared, "eval")
    if not train or not gold:
        return {}
    frequent = np.asarray(train, dtype=float).mean(axis=0) > 0.5  # (L,) the labels most training texts carry
    gold_array = np.asarray(gold, dtype=int)  # (N, L)
    names = prepared.label_names
    answers = {"no label for any text": np.zeros(len(names), dtype=bool)}
    if frequent.any():
        shown = ", ".join(n for n, f in zip(names, frequent, strict=True) if f)
        answers[f"always the labels most training texts carry ({shown})"] = frequent
    scored = {}
    for name, answer in answers.items():
        predicted = np.tile(answer.astype(int), (len(gold_array), 1))
        scores = multi_label_metrics(gold_array, predicted, predicted.astype(float), names)
        scored[name] = {k: scores[k] for k in ("macro_f1", "micro_f1", "subset_accuracy")}
    best = max(scored, key=lambda n: (scored[n]["micro_f1"], scored[n]["subset_accuracy"]))
    return {"name": f"{best} (a constant answer)", **scored[best]}


def view(inputs: ViewInputs, canvas: Canvas) -> View:
    """Eval F1 of each label at the run's decision thresholds, weakest first, with each label's support."""
    names = inputs.label_names
    found = {n: inputs.evaluation.get(f"eval_f1_{n}") for n in names}
    scores = {n: float(v) for n, v in found.items() if isinstance(v, int | float)}
    if not scores:
        return View()
    order = sorted(scores, key=lambda n: (scores[n], n))
    support = {n: inputs.evaluation.get(f"eval_support_{n}") for n in order}
    labels = [f"{n} ({support[n]:.0f})" if isinstance(support[n], int | float) else n for n in order]
    canvas.bars(
        labels, [scores[n] for n in order], inputs.folder / "label_f1.png", title="eval F1 per label", ylabel="F1"
    )
    return View(
        figures=[
            Figure("label_f1.png", "Eval F1 of each label at its decision threshold (eval positives), weakest first")
        ],
        numbers={"weakest_labels": {n: scores[n] for n in order[:5]}},
    )


def card_summary(facts: CardFacts) -> str:
    return (
        f"Multi-label classification: for {describe_inputs(facts.task)} it gives each of {len(facts.label_names)} "
        "labels its own probability (a sigmoid per label); every label whose probability reaches its threshold "
        "applies, so a text may have several labels or none." + long_texts(facts.task)
    )


def card_outputs(facts: CardFacts) -> list[str]:
    thresholds = facts.thresholds.get("thresholds", {})
    how = {
        "per_label": "each label's own, tuned on the eval split for that label's F1",
        "global": "one for all labels, tuned on the eval split for macro-F1",
        "fixed": "fixed by the recipe",
    }.get(str(facts.thresholds.get("strategy")), "see thresholds.json")
    if facts.thresholds.get("shrinkage"):  # task.threshold_shrinkage: rare labels' thresholds moved towards the global
        overall = card_number(facts.thresholds.get("global_threshold"))
        votes = card_number(facts.thresholds["shrinkage"])
        how += f", pulled towards the global {overall} as if {votes} more positives voted for it"
    return [
        "## Labels and decision thresholds",
        f"A label applies when its probability is at least its threshold ({how}; `{THRESHOLDS_FILE}` holds them, "
        "and `nlp-transfer predict` applies them). A plain transformers pipeline gives the probabilities "
        "(`top_k=None`) and leaves the thresholds to you.",
        "",
        "| id | label | threshold |",
        "|---|---|---|",
        *[f"| {i} | {name} | {card_number(thresholds.get(name))} |" for i, name in enumerate(facts.label_names)],
        "",
    ]


check_options = check_text_options


def evaluate(given: Evaluation) -> dict[str, Any]:
    """The run's own metrics at the run's thresholds (tuned on its eval split, never re-tuned on this file)."""
    task = MultiLabelTask.model_validate(given.recipe_task)
    rows, options, where = given.rows, given.options, given.where
    if options.label and isinstance(task.label, str):
        task = task.model_copy(update={"label": options.label})
    for name in task.label if isinstance(task.label, list) else [task.label]:
        column(rows, name, "--label", where)
    predictor = given.predictor()
    names = predictor.names
    thresholds = multi_label.thresholds_of(given.folder, names, given.origin)
    rows, texts, pairs, skipped = usable_texts(rows, options, task, where)
    declared = names if task.labels is not None or task.labels_file is not None else None
    gold = multi_label.LabelReader(task, declared, names).matrix(rows, where)  # (N, L)
    logits = torch.cat(list(predictor.text_model.outputs(texts, pairs))).float()  # (N, L)
    weights = given.resolved.get("positive_weights")
    loss = multi_label.loss_for(task.loss, weights)(logits, torch.from_numpy(gold)).item()  # the run's own loss
    decisions = Decisions(names, task.thresholds, task.threshold, task.threshold_shrinkage)
    decisions.settled = thresholds
    score = multi_label.scorer(names, decisions, task.threshold, given.extra_metrics())
    return {"rows": len(rows), "skipped": skipped, "metrics": score(logits.numpy(), gold) | {"loss": loss}}


def decision(row: dict[str, Any]) -> Any:
    return sorted(row["labels"])
