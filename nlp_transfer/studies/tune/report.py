"""What a tune session leaves: the trials table (trials.md, trials.json), the best settings as a recipe to `run`
(best_recipe.yaml), the best trial's run folder (trials/trial-<n>), and two figures (optimization history,
parameter importances). Written from the study's database, so whichever worker writes last writes everything.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.files import write_atomically, write_json_atomically
from nlp_transfer.recipe import dump_yaml
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.storage import optuna_module
from nlp_transfer.studies.tune.worker import describe

TRIALS_JSON, TRIALS_MD, BEST_RECIPE = "trials.json", "trials.md", "best_recipe.yaml"
HISTORY_PNG, IMPORTANCE_PNG = "optimization_history.png", "param_importances.png"


@dataclass
class Study:
    """The session's view of the study: what the report needs besides the trials."""

    study: Any
    name: str
    storage: str  # the URL, password masked
    metric: str
    wanted: int | None
    space: SearchSpace
    folder: Path


def write_report(view: Study) -> dict[str, Any]:
    """Every output file; returns the trials.json content."""
    rows = [_row(view, trial) for trial in view.study.get_trials(deepcopy=False)]
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    best = _best(view)
    record = {
        "study": view.name,
        "storage": view.storage,
        "metric": f"eval_{view.metric}",
        "direction": view.study.direction.name.lower(),
        "trials_wanted": view.wanted,
        "trials_finished": len(finished),
        "best": best,
        "trials": rows,
    }
    write_json_atomically(view.folder / TRIALS_JSON, record)
    write_atomically(view.folder / TRIALS_MD, markdown(record))
    if best is not None:
        write_atomically(view.folder / BEST_RECIPE, _best_recipe(view, best))
    record["figures"] = _figures(view)
    return record


def _row(view: Study, trial: Any) -> dict[str, Any]:
    states = optuna_module().trial.TrialState
    state = trial.state.name.lower().replace("fail", "failed")
    attrs = trial.user_attrs
    if trial.state == states.FAIL:
        if attrs.get("not_needed"):
            state = "not needed"  # another worker's trial took the last place
        elif attrs.get("interrupted"):
            state = "interrupted"
        elif not attrs.get("error"):
            state = "worker lost"  # its worker stopped sending heartbeats (killed); the trial was queued again
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # marked experimental; it reads the mark the retry callback leaves
        retried = optuna_module().storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    return {
        "number": trial.number,
        "state": state,
        "value": trial.value if trial.state == states.COMPLETE else None,
        "values": view.space.values(trial.params) if len(trial.params) == len(view.space.dimensions) else {},
        "evaluations": len(trial.intermediate_values),
        "last_reported": trial.intermediate_values[max(trial.intermediate_values)]
        if trial.intermediate_values
        else None,
        "retry_of": attrs.get("retry_of", retried),
        "error": attrs.get("error"),
        "worker": attrs.get("worker"),
        "run_dir": attrs.get("run_dir"),
        "train_seconds": attrs.get("train_seconds"),
        "duration_seconds": trial.duration.total_seconds() if trial.duration else None,
    }


def _best(view: Study) -> dict[str, Any] | None:
    states = optuna_module().trial.TrialState
    if not view.study.get_trials(deepcopy=False, states=(states.COMPLETE,)):
        return None
    trial = view.study.best_trial
    run_dir = trial.user_attrs.get("run_dir")
    return {
        "number": trial.number,
        "value": trial.value,
        "values": view.space.values(trial.params),
        "run_dir": run_dir if run_dir and Path(run_dir).is_dir() else None,
        "worker": trial.user_attrs.get("worker"),
    }


def markdown(record: dict[str, Any]) -> str:
    metric, best = record["metric"], record["best"]
    wanted = record["trials_wanted"]
    lines = [
        f"# tune: {record['study']}",
        "",
        f"- storage: `{record['storage']}`; {record['direction']} {metric}",
        f"- finished trials (complete or pruned): {record['trials_finished']}" + (f" of {wanted}" if wanted else ""),
    ]
    if best is not None:
        where = best["run_dir"] or f"on worker {best['worker']} (not in this folder)"
        lines += [f"- best: trial {best['number']}, {metric} {best['value']:.4f}: {describe(best['values'])}"]
        lines += [f"- best run folder: `{where}`; its settings: `{BEST_RECIPE}`", ""]
    paths = list(dict.fromkeys(path for row in record["trials"] for path in row["values"]))
    header = ["trial", "state", metric, *paths, "evaluations", "train time (s)", "worker"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in record["trials"]:
        value = f"{row['value']:.4f}" if row["value"] is not None else "-"
        if best is not None and row["number"] == best["number"]:
            value = f"**{value}**"
        state = row["state"] + (f" (retry of {row['retry_of']})" if row["retry_of"] is not None else "")
        settings = [_cell(row["values"].get(path)) for path in paths]
        seconds = f"{row['train_seconds']:.1f}" if row["train_seconds"] is not None else "-"
        cells = [str(row["number"]), state, value, *settings, str(row["evaluations"]), seconds, row["worker"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _best_recipe(view: Study, best: dict[str, Any]) -> str:
    loaded = view.space.loaded
    recipe = view.space.recipe(best["values"], Path("unused"))
    raw = recipe.recipe.model_dump(mode="json")
    raw.pop("tune")
    raw["output"]["dir"] = None  # a new run folder under output.root, as for any recipe
    header = [
        f"# The best settings of tune study '{view.name}' (trial {best['number']}: eval {view.metric} "
        f"{best['value']:.4f}), found by `nlp-transfer tune {loaded.path}`:",
        f"#   {describe(best['values'])}",
        f"# Run: nlp-transfer run {view.folder / BEST_RECIPE}   (relative data paths resolve as in {loaded.path})",
    ]
    return "\n".join(header) + "\n" + dump_yaml(raw)


def _figures(view: Study) -> list[str]:
    """The optimization history and the parameter importances as PNGs (needs matplotlib: the plot extra)."""
    optuna = optuna_module()
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    plots = [(HISTORY_PNG, optuna.visualization.matplotlib.plot_optimization_history)]
    complete = view.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) > 1 and len(view.space.dimensions) > 0:  # importances compare settings: two trials at least
        plots.append((IMPORTANCE_PNG, optuna.visualization.matplotlib.plot_param_importances))
    for name, plot in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(view.study, target_name=f"eval {view.metric}")
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances when every trial drew the same values
        figure = axes.figure
        figure.tight_layout()
        figure.savefig(view.folder / name, dpi=120)
        plt.close(figure)
        written.append(name)
    return written
