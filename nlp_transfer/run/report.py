"""The run report: figures written with the run (curves.png and the task's view, views.py) and report.html, one
self-contained page (images inline, no network) with the recipe, the metrics, the diagnostics, the figures and the
worst errors. `nlp-transfer report RUN [RUN ...]` rebuilds it from the run folder's files, and overlays several runs'
curves on one figure.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_folder, read_json_or_empty
from nlp_transfer.run import figures
from nlp_transfer.run.callbacks import PlainProgress, ProgressBar
from nlp_transfer.run.diagnostics import messages
from nlp_transfer.run.folder import (
    CURVES_FILE,
    ENVIRONMENT_FILE,
    ERRORS_FILE,
    METRICS_FILE,
    RECIPE_FILE,
    REPORT_FILE,
    TRAINER_STATE,
    RunFolder,
    read_status,
)
from nlp_transfer.run.views import VIEWS, Figure, ViewInputs

log = logging.getLogger(__name__)

SHOWN_ERRORS = 20  # rows of errors.jsonl in report.html


@dataclass
class Captured:
    """The predictions and labels the task's metric saw in the last evaluation."""

    predictions: Any = None
    label_ids: Any = None


def capture(trainer: Any) -> Captured:
    """Keep what compute_metrics sees (classification's whole-set predictions), so the report needs no second pass
    over the eval split. Tasks that score batch by batch keep their state in the metric object itself."""
    captured = Captured()
    compute = trainer.compute_metrics
    if compute is None or getattr(trainer.args, "batch_eval_metrics", False):
        return captured

    def recording(prediction: Any) -> Any:
        captured.predictions, captured.label_ids = prediction.predictions, prediction.label_ids
        return compute(prediction)

    trainer.compute_metrics = recording
    return captured


def quiet_progress(trainer: Any) -> None:
    """After training: the evaluations that follow score the kept checkpoint for the summary, not progress."""
    for callback in list(trainer.callback_handler.callbacks):
        if isinstance(callback, ProgressBar | PlainProgress):
            trainer.remove_callback(callback)


def draw(
    folder: Path,
    *,
    task: str,
    history: list[dict[str, Any]],
    metric: str,
    kept_step: int | None,
    captured: Any,
    tokenized: Any,
    tokenizer: Any,
    label_names: list[str],
    evaluation: dict[str, Any] | None = None,
    model_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's figures; returns what metrics.json records under `report` (figures with captions, view numbers).
    A figure that cannot be drawn (matplotlib missing) is left out with a warning: the run itself stands."""
    try:
        figures.curves({folder.name: history}, metric, folder / CURVES_FILE, kept={folder.name: kept_step})
        drawn = [Figure(CURVES_FILE, "Training loss per logging step, eval loss and metric per evaluation")]
        numbers: dict[str, Any] = {}
        if task in VIEWS and captured is not None:
            found = ViewInputs(
                folder, captured, tokenized, tokenizer, label_names, evaluation or {}, model_settings or {}
            )
            view = VIEWS[task](found)
            drawn += view.figures
            numbers = view.numbers
    except ImportError as err:
        log.warning("figures not drawn (%s); pip install matplotlib", err)
        return {"figures": [], "numbers": {}}
    return {"figures": [{"file": f.file, "caption": f.caption} for f in drawn], "numbers": numbers}


def write_html(folder: Path, state: str | None = None) -> Path:
    """report.html from the folder's files (written with the run, rebuilt by `nlp-transfer report`). `state`: what
    the run will be once its status is written (a finishing run draws its report before marking itself complete,
    which it does last)."""
    RunFolder(folder).write_text(REPORT_FILE, render(folder, state))
    return folder / REPORT_FILE


def render(folder: Path, state: str | None = None) -> str:
    metrics = read_json_or_empty(folder / METRICS_FILE)
    environment = read_json_or_empty(folder / ENVIRONMENT_FILE)
    recipe = (folder / RECIPE_FILE).read_text(encoding="utf-8") if (folder / RECIPE_FILE).is_file() else ""
    report = metrics.get("report", {})
    parts = [
        f"<h1>{_e(folder.name)}</h1>",
        f"<p>{_e(_status_line(folder, metrics, state))}</p>",
        "<h2>Metrics</h2>",
        _metrics_table(metrics),
    ]
    found = messages(metrics.get("diagnostics", {}))
    if found:
        parts += ["<h2>What the training log says</h2>", "<ul>", *[f"<li>{_e(m)}</li>" for m in found], "</ul>"]
    for figure in report.get("figures", []):
        parts += [f"<h2>{_e(figure['caption'])}</h2>", _image(folder / figure["file"], figure["caption"])]
    numbers = report.get("numbers", {})
    if numbers:
        parts += ["<h2>More numbers</h2>", f"<pre>{_e(json.dumps(numbers, indent=2))}</pre>"]
    parts += _errors(folder)
    notes = environment.get("data_notes", [])
    if notes:
        parts += ["<h2>Data</h2>", "<ul>", *[f"<li>{_e(n)}</li>" for n in notes], "</ul>"]
    parts += ["<h2>Recipe</h2>", f"<pre>{_e(recipe)}</pre>"]
    return _page(f"nlp-transfer run {folder.name}", parts)


def rebuild(runs: list[Path], output_dir: Path | None) -> Path:
    """One run: its curves and report.html drawn again in place. Several: their curves overlaid and their headline
    metrics side by side, in output_dir (default runs/report-<time>). Returns the report written."""
    if len(runs) > 1 and output_dir is not None:
        check_output_folder(output_dir, "--output-dir")  # before any run is read
    for run in runs:
        if not (run / METRICS_FILE).is_file() or not (run / TRAINER_STATE).is_file():
            raise UserError(f"{run}: not a finished nlp-transfer run folder (no {METRICS_FILE}); pass run folders")
    histories = {run.name: _history(run) for run in runs}
    if len(runs) == 1:
        run = runs[0]
        metric = _metric(run)
        kept = read_json_or_empty(run / METRICS_FILE).get("diagnostics", {}).get("kept", {}).get("step")
        figures.curves(histories, metric, run / CURVES_FILE, kept={run.name: kept})
        return write_html(run)
    out = output_dir or Path("runs") / f"report-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    metric = _metric(runs[0])
    figures.curves(histories, metric, out / CURVES_FILE)
    rows = "".join(f"<tr><td>{_e(run.name)}</td>{_cells(read_json_or_empty(run / METRICS_FILE))}</tr>" for run in runs)
    parts = [
        "<h1>Runs compared</h1>",
        f"<table><tr><th>run</th><th>metric</th><th>eval</th><th>test</th></tr>{rows}</table>",
        f"<h2>Curves (eval {_e(metric)})</h2>",
        _image(out / CURVES_FILE, "training curves of every run"),
    ]
    RunFolder(out).write_text(REPORT_FILE, _page("nlp-transfer runs compared", parts))
    return out / REPORT_FILE


# ---- html pieces ----------------------------------------------------------------------------------------------


def _page(title: str, parts: list[str]) -> str:
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow-x:auto}"
        "img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{style}</style></head>"
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _image(path: Path, caption: str) -> str:
    if not path.is_file():
        return f"<p>({_e(path.name)} was not drawn)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"


def _metrics_table(metrics: dict[str, Any]) -> str:
    splits = [split for split in ("eval", "test") if split in metrics]
    names = sorted(
        {
            k.removeprefix(f"{s}_")
            for s in splits
            for k, v in metrics[s].items()
            if k.startswith(f"{s}_") and isinstance(v, int | float)
        }
        - {"runtime", "samples_per_second", "steps_per_second", "epoch"}
    )
    header = "".join(f"<th>{_e(s)}</th>" for s in splits)
    rows = "".join(
        f"<tr><td>{_e(n)}</td>" + "".join(f"<td>{_fmt(metrics[s].get(f'{s}_{n}'))}</td>" for s in splits) + "</tr>"
        for n in names
    )
    return f"<table><tr><th>metric</th>{header}</tr>{rows}</table>"


def _errors(folder: Path) -> list[str]:
    path = folder / ERRORS_FILE
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:SHOWN_ERRORS]]
    if not rows:
        return []
    columns = [c for c in ("text", "text_pair", "label", "predicted", "probability") if c in rows[0]]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(str(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return [
        f"<h2>The eval examples it gets wrong most confidently ({len(rows)} shown; all in {ERRORS_FILE})</h2>",
        f"<table><tr>{head}</tr>{body}</table>",
    ]


def _status_line(folder: Path, metrics: dict[str, Any], state: str | None = None) -> str:
    train = metrics.get("train", {})
    state = state or read_status(folder).get("state", "unknown")
    return (
        f"Run {state}; method {train.get('method', '?')}; {train.get('trainable_parameters', 0):,} of "
        f"{train.get('total_parameters', 0):,} parameters trained in {train.get('train_wall_seconds', 0):.0f} s."
    )


def _cells(metrics: dict[str, Any]) -> str:
    metric = metrics.get("diagnostics", {}).get("metric") or "loss"
    values = [metrics.get(split, {}).get(f"{split}_{metric}") for split in ("eval", "test")]
    return f"<td>{_e(metric)}</td>" + "".join(f"<td>{_fmt(v)}</td>" for v in values)


def _history(run: Path) -> list[dict[str, Any]]:
    return list(read_json_or_empty(run / TRAINER_STATE).get("log_history", []))


def _metric(run: Path) -> str:
    return str(read_json_or_empty(run / METRICS_FILE).get("diagnostics", {}).get("metric") or "loss")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else _e(str(value)))


_e: Callable[[str], str] = html.escape
