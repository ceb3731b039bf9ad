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
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_folder, read_json_or_empty
from nlp_transfer.report import figures
from nlp_transfer.report.diagnostics import messages
from nlp_transfer.report.metric_order import MetricOrder, fmt, order, weakest_first
from nlp_transfer.runfolder.folder import (
    CURVES_FILE,
    ENVIRONMENT_FILE,
    ERRORS_FILE,
    METRICS_FILE,
    RECIPE_FILE,
    REPORT_FILE,
    RUN_LOG,
    STATUS_FILE,
    TRAINER_STATE,
    RunFolder,
    read_status,
)
from nlp_transfer.tasks import TASKS
from nlp_transfer.tasks.results import Figure, ViewInputs

log = logging.getLogger(__name__)

SHOWN_ERRORS = 20  # rows of errors.jsonl in report.html


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
    baseline: float | None = None,
    source: Any = None,
) -> dict[str, Any]:
    """The run's figures; returns what metrics.json records under `report` (figures with captions, view numbers).
    A figure that cannot be drawn (matplotlib missing) is left out with a warning: the run itself stands."""
    try:
        figures.curves(
            {folder.name: history}, metric, folder / CURVES_FILE, kept={folder.name: kept_step}, baseline=baseline
        )
        drawn = [Figure(CURVES_FILE, "Training loss per logging step, eval loss and metric per evaluation")]
        numbers: dict[str, Any] = {}
        if captured is not None:
            found = ViewInputs(
                folder, captured, tokenized, tokenizer, label_names, evaluation or {}, model_settings or {}, source
            )
            view = TASKS[task].results.view(found, figures)
            if view.errors is not None:
                errors = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in view.errors)
                RunFolder(folder).write_text(ERRORS_FILE, errors)
            drawn += view.figures
            numbers = view.numbers
    except ImportError as err:
        log.warning("figures not drawn (%s); pip install matplotlib", err)
        return {"figures": [], "numbers": {}}
    return {"figures": [{"file": f.file, "caption": f.caption} for f in drawn], "numbers": numbers}


def write_html(folder: Path, *, state: str | None = None, out: Path | None = None) -> Path:
    """report.html from the folder's files (written with the run, rebuilt by `nlp-transfer report`), in `out`
    (default: the run folder). `state`: the run's state when the status file does not say it yet (a run writes its
    report just before it marks itself complete)."""
    where = out or folder
    RunFolder(where).write_text(REPORT_FILE, render(folder, state=state, drawn_in=out))
    return where / REPORT_FILE


def render(folder: Path, *, state: str | None = None, drawn_in: Path | None = None) -> str:
    """The answer first: the headline metrics, the verdicts (kept checkpoint, baseline, over-fitting), the figures;
    then the full per-class / per-label / per-target table (collapsed), the worst errors, the data and the recipe."""
    metrics = read_json_or_empty(folder / METRICS_FILE)
    environment = read_json_or_empty(folder / ENVIRONMENT_FILE)
    recipe = (folder / RECIPE_FILE).read_text(encoding="utf-8") if (folder / RECIPE_FILE).is_file() else ""
    report = metrics.get("report", {})
    splits: list[str] = [split for split in ("eval", "test") if split in metrics]
    shown = order(metrics, splits)
    parts = [
        f"<h1>{_e(folder.name)}</h1>",
        *_status(metrics, state or read_status(folder).get("state", "unknown")),
        "<h2>Results</h2>",
        _table(metrics, splits, shown.headline),
    ]
    found = messages(metrics.get("diagnostics", {}))
    if found:
        parts += ["<h2>What the training log says</h2>", "<ul>", *[f"<li>{_e(m)}</li>" for m in found], "</ul>"]
    for figure in report.get("figures", []):
        image = (
            drawn_in / figure["file"] if drawn_in and (drawn_in / figure["file"]).is_file() else folder / figure["file"]
        )
        parts += [f"<h2>{_e(figure['caption'])}</h2>", _image(image, figure["caption"])]
    parts += _breakdown(metrics, splits, shown)
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
    """One run: its curves and report.html drawn again, in output_dir if given (else in place). Several (of one
    task): their curves overlaid and their headline metrics side by side, in output_dir (default
    runs/report-<time>). Returns the report written."""
    if output_dir is not None:
        check_output_folder(output_dir, "--output-dir")  # before any run is read
    for run in runs:
        _check_finished(run)
    tasks = {run: _task(run) for run in runs}
    if len(set(tasks.values())) > 1:
        named = ", ".join(f"{run.name}: {task}" for run, task in tasks.items())
        raise UserError(
            f"these runs are of different tasks ({named}): their curves and metrics do not compare; "
            "report the runs of one task together"
        )
    histories = {run.name: _history(run) for run in runs}
    if len(runs) == 1:
        run = runs[0]
        out = output_dir or run
        out.mkdir(parents=True, exist_ok=True)
        diagnostics = read_json_or_empty(run / METRICS_FILE).get("diagnostics", {})
        metric = _metric(run)
        baseline = (diagnostics.get("baseline") or {}).get(metric)
        kept = {run.name: diagnostics.get("kept", {}).get("step")}
        figures.curves(histories, metric, out / CURVES_FILE, kept=kept, baseline=baseline)
        return write_html(run, out=output_dir)
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


def _check_finished(run: Path) -> None:
    """A folder a run finished: its metrics and training log are there and its status says complete."""
    for name in (METRICS_FILE, TRAINER_STATE):
        if not (run / name).is_file():
            raise UserError(f"{run}: not a finished nlp-transfer run folder (no {name}); pass run folders")
    state = read_status(run).get("state")
    if state is not None and state != "complete":
        raise UserError(
            f"{run}: the run is {state} ({STATUS_FILE}), not complete; a report draws finished runs "
            f"(what happened is in {RUN_LOG})"
        )


def _task(run: Path) -> str:
    recipe = yaml.safe_load((run / RECIPE_FILE).read_text(encoding="utf-8")) if (run / RECIPE_FILE).is_file() else {}
    return str(((recipe or {}).get("task") or {}).get("name", "unknown"))


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


def _table(metrics: dict[str, Any], splits: list[str], names: list[str]) -> str:
    header = "".join(f"<th>{_e(s)}</th>" for s in splits)
    rows = "".join(
        f"<tr><td>{_e(n)}</td>"
        + "".join(f"<td>{_e(fmt(metrics[s].get(f'{s}_{n}'), n))}</td>" for s in splits)
        + "</tr>"
        for n in names
    )
    return f"<table><tr><th>metric</th>{header}</tr>{rows}</table>"


def _breakdown(metrics: dict[str, Any], splits: list[str], shown: MetricOrder) -> list[str]:
    """Every class (label, target) on the last split scored, the weakest first, collapsed: it can be long."""
    columns, rows = shown.breakdown
    if not rows or not splits:
        return []
    split = splits[-1]
    kind = "class" if shown.classes else "target"
    if shown.classes:
        rows = weakest_first(metrics[split], split, rows)
    header = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{_e(row)}</td>"
        + "".join(f"<td>{_e(fmt(metrics[split].get(f'{split}_{c}_{row}'), c))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    title = f"Per {kind} on the {split} split: {len(rows)} rows" + (", the weakest first" if shown.classes else "")
    return [
        f"<details><summary><b>{_e(title)}</b></summary>",
        f"<table><tr><th>{kind}</th>{header}</tr>{body}</table>",
        "</details>",
    ]


def _errors(folder: Path) -> list[str]:
    path = folder / ERRORS_FILE
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:SHOWN_ERRORS]]
    if not rows:
        return []
    columns = [c for c in ("text", "text_pair", "label", "predicted", "probability", "file", "row") if c in rows[0]]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(str(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return [
        f"<h2>The eval examples it gets wrong most confidently ({len(rows)} shown; all in {ERRORS_FILE})</h2>",
        f"<table><tr>{head}</tr>{body}</table>",
    ]


def _status(metrics: dict[str, Any], state: str) -> list[str]:
    train = metrics.get("train", {})
    line = (
        f"Run {state}; method {train.get('method', '?')}; {train.get('trainable_parameters', 0):,} of "
        f"{train.get('total_parameters', 0):,} parameters trained in {train.get('train_wall_seconds', 0):.0f} s."
    )
    if state == "complete":
        return [f"<p>{_e(line)}</p>"]
    return [
        f"<p><b>{_e(f'This run is {state}, not complete: the numbers below are not those of a finished run.')}</b></p>",
        f"<p>{_e(line)}</p>",
    ]


def _cells(metrics: dict[str, Any]) -> str:
    metric = metrics.get("diagnostics", {}).get("metric") or "loss"
    values = [metrics.get(split, {}).get(f"{split}_{metric}") for split in ("eval", "test")]
    return f"<td>{_e(metric)}</td>" + "".join(f"<td>{_e(fmt(v))}</td>" for v in values)


def _history(run: Path) -> list[dict[str, Any]]:
    return list(read_json_or_empty(run / TRAINER_STATE).get("log_history", []))


def _metric(run: Path) -> str:
    return str(read_json_or_empty(run / METRICS_FILE).get("diagnostics", {}).get("metric") or "loss")


_e: Callable[[str], str] = html.escape
