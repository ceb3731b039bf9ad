"""`nlp-transfer evaluate`: a trained model (run folder, copy, or pushed repo) on a labelled file it has not seen.

The file is read as a recipe's data is (data.load_extra_split: csv/tsv/jsonl/json/SQuAD json/parquet, a name under
the data root, or a hub dataset), inputs are truncated as in training, and the task's metrics are those training
reported: on a run's own eval file they reproduce the run's eval metrics. The task checks the columns and scores
(its results module's evaluate); this module reads the file and opens the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.data.assets import default_data_root
from nlp_transfer.data.loading import load_extra_split
from nlp_transfer.data.readers import COMMAND_NAMES
from nlp_transfer.recipe import DataFile
from nlp_transfer.runfolder.folder import TASK_FILE
from nlp_transfer.tasks.evaluations import Evaluation
from nlp_transfer.tasks.extra_metrics import LoadedMetric, load_extra_metrics
from nlp_transfer.use.predict import predictor_for
from nlp_transfer.use.trained import Trained, open_trained


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
    result = trained.task.results.evaluate(evaluation_of(trained, rows, options, where, runtime))
    ran = runtime.describe() if trained.onnx is None else f"cpu {trained.backend}"  # onnxruntime's CPU provider
    return {"model": trained.origin, "data": options.data, **result, "runtime": ran}


def check_options_apply(trained: Trained, options: EvaluateOptions) -> None:
    """An option the model cannot use is refused, never ignored (the task says which: a QA model's columns are
    fixed, a single-text model has no second text), before the file is read."""
    trained.task.results.check_options(trained.task_settings, trained.origin, options)


def evaluation_of(trained: Trained, rows: Any, options: EvaluateOptions, where: str, runtime: Runtime) -> Evaluation:
    """What the task's evaluate reads; the model is opened only when it asks, once the file's columns are checked."""
    return Evaluation(
        rows=rows,
        where=where,
        options=options,
        recipe_task=trained.recipe["task"],
        settings=trained.task_settings,
        origin=trained.origin,
        folder=trained.folder,
        predictor=lambda: predictor_for(trained, options.batch_size, runtime),
        extra_metrics=lambda: extra_metrics_of(trained),
        resolved=read_json_or_empty(trained.folder / TASK_FILE),
    )


def extra_metrics_of(trained: Trained) -> list[LoadedMetric]:
    """The run's train.extra_metrics (a local metric script must still be where the run found it)."""
    recorded = trained.recipe.get("train", {}).get("extra_metrics") or []
    return load_extra_metrics(recorded, Path.cwd())


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
