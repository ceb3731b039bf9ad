"""`nlp-transfer evaluate`: a trained model (run folder, copy, or pushed repo) on a labelled file it has not seen.

The file is read as a recipe's data is (data.load_extra_split: csv/tsv/jsonl/json/SQuAD json/parquet, a name under
the data root, or a hub dataset), inputs are truncated as in training, and the task's metrics are those training
reported: on a run's own eval file they reproduce the run's eval metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.data.assets import default_data_root
from nlp_transfer.data.loading import load_extra_split
from nlp_transfer.data.readers import COMMAND_NAMES
from nlp_transfer.recipe import DataFile
from nlp_transfer.run.folder import TASK_FILE
from nlp_transfer.share.predict import AnswerPredictor
from nlp_transfer.share.text_evaluators import evaluate_multi_label, evaluate_regression, extra_metrics_of
from nlp_transfer.share.text_predictors import TextPredictor
from nlp_transfer.share.token_predictor import evaluate_tokens
from nlp_transfer.share.trained import Trained, open_trained
from nlp_transfer.tasks.classification import gold_ids, scorer, weighted_cross_entropy
from nlp_transfer.tasks.metrics import squad_metrics
from nlp_transfer.tasks.qa import answer_pairs
from nlp_transfer.tasks.text_rows import check_kinds


@dataclass
class EvaluateOptions:
    model: str  # run folder, copy, or repo id
    data: str  # file, name under the data root, or hub dataset id
    revision: str | None = None  # of a repo id
    columns: list[str] | None = None  # names for a header-less csv/tsv
    delimiter: str | None = None  # csv/tsv field delimiter (default ',' for csv, tab for tsv)
    encoding: str = "utf-8"
    text: str | None = None  # column overrides; default: the columns the model was trained on
    text_pair: str | None = None
    label: str | None = None
    label_lines: str | None = None  # a file with one label per line for the rows of a plain-text --data file
    max_samples: int | None = None
    seed: int = 42  # picks the --max-samples subset
    batch_size: int = 32
    device: str = "auto"  # where and in which precision the model runs (core.hardware)
    precision: str = "auto"


def evaluate_model(options: EvaluateOptions) -> dict[str, Any]:
    """{model, data, rows, skipped, metrics} for the model on the file."""
    runtime = Runtime.choose(options.device, options.precision)  # a bad --device fails before any loading
    trained = open_trained(options.model, options.revision)
    check_options_apply(trained, options)  # before the file is read
    loaded = load_extra_split(
        DataFile(path=options.data, label_lines=options.label_lines) if options.label_lines else options.data,
        split="eval",  # a hub dataset's validation split unless the reference names one
        field="--data",
        data_root=default_data_root(),
        base_dir=Path.cwd(),
        columns=options.columns,
        delimiter=options.delimiter,
        encoding=options.encoding,
        names=COMMAND_NAMES,
    )
    rows = loaded.splits["eval"]
    if options.max_samples is not None and len(rows) > options.max_samples:
        rows = rows.shuffle(seed=options.seed).select(range(options.max_samples))
    where = f"--data {', '.join(loaded.sources['eval'])}"
    evaluate = EVALUATORS[trained.recipe["task"]["name"]]
    result = evaluate(trained, rows, options, where, runtime)
    ran = runtime.describe() if trained.onnx is None else f"cpu {trained.backend}"  # onnxruntime's CPU provider
    return {"model": trained.origin, "data": options.data, **result, "runtime": ran}


def check_options_apply(trained: Trained, options: EvaluateOptions) -> None:
    """An option the model cannot use is refused, never ignored: the columns a QA model reads are fixed, a
    single-text model has no second text, and a model of several label columns cannot take one --label."""
    task, origin = trained.task_settings, trained.origin
    given = {
        "--text": options.text,
        "--text-pair": options.text_pair,
        "--label": options.label,
        "--label-lines": options.label_lines,
    }
    if trained.recipe["task"]["name"] == "qa":
        for option, value in given.items():
            if value is not None:
                raise UserError(
                    f"evaluate {option}: {origin} answers questions from the file's {task['question']}, "
                    f"{task['context']} and {task['answers']} columns (SQuAD json or jsonl), so {option} does not "
                    "apply; drop it"
                )
        return
    if options.text_pair is not None and not task.get("text_pair"):
        raise UserError(
            f"evaluate --text-pair: {origin} reads single texts (it was trained without a second text), so a second "
            "text column does not apply; drop --text-pair"
        )
    labels = task.get("label")
    if options.label is not None and isinstance(labels, list):
        raise UserError(
            f"evaluate --label: {origin} reads {len(labels)} label columns ({', '.join(map(str, labels))}) and "
            "--label names one; give a file with those columns and drop --label"
        )


def _column(rows: Any, wanted: str, option: str, where: str) -> str:
    if wanted not in rows.column_names:
        raise UserError(
            f"{where}: no column '{wanted}'{did_you_mean(wanted, rows.column_names)}; the columns are "
            f"{', '.join(rows.column_names)}. Name the right one with {option} (or --columns for a file without a "
            "header row)"
        )
    return wanted


def _classification(
    trained: Trained, rows: Any, options: EvaluateOptions, where: str, runtime: Runtime
) -> dict[str, Any]:
    task = trained.task_settings
    text = _column(rows, options.text or task["text"], "--text", where)
    pair_name = options.text_pair or task.get("text_pair")
    pair = _column(rows, pair_name, "--text-pair", where) if pair_name else None
    label = _column(rows, options.label or task["label"], "--label", where)
    check_kinds(rows, where, {"--text": text, **({"--text-pair": pair} if pair else {})}, ("--label", label))
    usable = [
        i
        for i, row in enumerate(rows)
        if str(row[text] or "").strip()
        and (pair is None or str(row[pair] or "").strip())
        and row[label] is not None
        and str(row[label]).strip()
    ]
    if not usable:
        raise UserError(f"{where}: no usable rows (every text is empty or every label missing)")
    skipped = len(rows) - len(usable)
    rows = rows.select(usable) if skipped else rows
    predictor = TextPredictor(trained, batch_size=options.batch_size, runtime=runtime)
    names = predictor.names
    declared = task.get("labels") is not None or task.get("labels_file") is not None
    gold = gold_ids(rows[label], names, declared, where, fix="fix the file, or name the label column with --label")
    texts = [str(t) for t in rows[text]]
    pairs = [str(t) for t in rows[pair]] if pair else None
    logits = torch.cat(list(predictor.logits(texts, pairs))).float()  # (N, K), a long text's windows pooled
    weighted = weighted_cross_entropy(read_json_or_empty(trained.folder / TASK_FILE).get("class_weights"))
    loss = (weighted or torch.nn.functional.cross_entropy)(logits, torch.as_tensor(gold)).item()
    metrics = scorer(names, extra_metrics_of(trained))(logits.numpy(), gold) | {"loss": loss}
    return {"rows": len(rows), "skipped": skipped, "metrics": metrics}


def _qa(trained: Trained, rows: Any, options: EvaluateOptions, where: str, runtime: Runtime) -> dict[str, Any]:
    task = trained.task_settings
    needed = [task["question"], task["context"], task["answers"]]
    missing = [name for name in needed if name not in rows.column_names]
    if missing:
        raise UserError(
            f"{where}: no column {', '.join(repr(m) for m in missing)}; {trained.origin} answers questions and is "
            f"evaluated on rows with {', '.join(needed)} (SQuAD json, or jsonl with those fields), but the file's "
            f"columns are {', '.join(rows.column_names)}. Pass a question-answering file"
        )
    question, context, answers = needed
    predictor = AnswerPredictor(trained, batch_size=options.batch_size, runtime=runtime)
    pairs = [{"question": str(r[question]).lstrip(), "context": str(r[context])} for r in rows]
    predicted = [row["answer"] or "" for row in predictor.predict(pairs)]
    golds = [[text for text, _ in answer_pairs(value)] for value in rows[answers]]
    return {"rows": len(rows), "skipped": 0, "metrics": squad_metrics(predicted, golds)}


EVALUATORS = {
    "classification": _classification,
    "multi_label": evaluate_multi_label,
    "regression": evaluate_regression,
    "qa": _qa,
    "token_classification": evaluate_tokens,
}


def summary(result: dict[str, Any]) -> str:
    """One line for people: the headline metrics."""
    metrics = result["metrics"]
    headline = (
        "accuracy",
        "macro_f1",
        "micro_f1",
        "pearson",
        "spearman",
        "mae",
        "exact_match",
        "precision",
        "recall",
        "f1",
        "loss",
    )
    shown = [k for k in headline if k in metrics]
    values = ", ".join(f"{k} {metrics[k]:.4f}" for k in shown)
    skipped = f" ({result['skipped']} skipped: empty text or missing label)" if result["skipped"] else ""
    return f"{result['model']} on {result['data']}: {values} over {result['rows']} rows{skipped}"
