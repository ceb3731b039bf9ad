"""What a tune session leaves: the trials table (trials.md, trials.json), the confirmation's verdict, the best
settings as a recipe to `run` (best_recipe.yaml, written only beside a verdict), the best trial's run folder
(trials/trial-<n>), and two figures (optimization history, parameter importances). Written from the study's
database, so whichever worker writes last writes everything.

The best trial is the best that learned and never diverged (trial.crowned): a trial at the majority baseline is
never crowned, whatever its rank among trials that all failed to learn.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.files import write_atomically, write_json_atomically
from nlp_transfer.recipe import dump_yaml
from nlp_transfer.studies.tune.confirm import confirmation
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.storage import optuna_module
from nlp_transfer.studies.tune.trial import crowned
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
    finished = [r for r in rows if r["state"] in ("complete", "pruned", "diverged", "not learned")]
    best = _best(view)
    record = {
        "study": view.name,
        "storage": view.storage,
        "metric": f"eval_{view.metric}",
        "direction": view.study.direction.name.lower(),
        "trials_wanted": view.wanted,
        "trials_finished": len(finished),
        "best": best,
        "no_best": _no_best(rows) if best is None and finished else None,
        "confirm_seeds": view.space.loaded.recipe.tune.confirm if view.space.loaded.recipe.tune else 0,
        "confirmation": best.get("confirmation") if best is not None else None,
        "trials": rows,
    }
    write_json_atomically(view.folder / TRIALS_JSON, record)
    write_atomically(view.folder / TRIALS_MD, markdown(record))
    if best is not None and record["confirmation"] is not None:  # the best settings go out only beside their verdict
        write_atomically(view.folder / BEST_RECIPE, _best_recipe(view, best, record["confirmation"]))
    else:  # an earlier session's best recipe would stand for a best that is no longer the best, or not yet checked
        (view.folder / BEST_RECIPE).unlink(missing_ok=True)
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
    if trial.state == states.COMPLETE and attrs.get("diverged"):
        state = "diverged"  # scored at the baseline; never crowned
    elif trial.state == states.COMPLETE and not attrs.get("learned", True):
        state = "not learned"  # no better than the baseline; never crowned
    return {
        "number": trial.number,
        "state": state,
        "value": trial.value if trial.state == states.COMPLETE else None,
        "spread": attrs.get("spread"),
        "seed_values": [run["value"] for run in attrs.get("seed_runs", [])],
        "diverged_seeds": attrs.get("diverged", []),
        "baseline": attrs.get("baseline"),
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
    trial = crowned(view.study)
    if trial is None:
        return None
    run_dir = trial.user_attrs.get("run_dir")
    return {
        "number": trial.number,
        "value": trial.value,
        "spread": trial.user_attrs.get("spread"),
        "values": view.space.values(trial.params),
        "run_dir": run_dir if run_dir and Path(run_dir).is_dir() else None,
        "worker": trial.user_attrs.get("worker"),
        "confirmation": confirmation(view.study, view.space, view.metric, trial),
    }


def _no_best(rows: list[dict[str, Any]]) -> str:
    """Why no trial is crowned, in words."""
    complete = [r for r in rows if r["state"] in ("not learned", "diverged")]
    baseline = next((r["baseline"] for r in rows if r["baseline"] is not None), None)
    against = f" ({baseline:.4f})" if baseline is not None else ""
    if not complete:
        return "no trial completed (all pruned or failed); run more trials or widen the space"
    return (
        f"none: no trial learned the task; every complete trial is no better than the baseline{against} or diverged; "
        "train longer (train.epochs), raise the learning rate, or check the labels"
    )


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
        spread = f" ± {best['spread']:.4f}" if best.get("spread") is not None else ""
        lines += [f"- best: trial {best['number']}, {metric} {best['value']:.4f}{spread}: {describe(best['values'])}"]
        lines += [f"- best run folder: `{where}`"]
        lines += _confirmation_lines(record)
        lines += [""]
    elif record.get("no_best"):
        lines += [f"- best: {record['no_best']}", ""]
    paths = list(dict.fromkeys(path for row in record["trials"] for path in row["values"]))
    header = ["trial", "state", metric, *paths, "evaluations", "train time (s)", "worker"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in record["trials"]:
        value = f"{row['value']:.4f}" if row["value"] is not None else "-"
        if row.get("spread") is not None:
            value += f" ± {row['spread']:.4f}"
        if best is not None and row["number"] == best["number"]:
            value = f"**{value}**"
        state = row["state"] + (f" (retry of {row['retry_of']})" if row["retry_of"] is not None else "")
        settings = [_cell(row["values"].get(path)) for path in paths]
        seconds = f"{row['train_seconds']:.1f}" if row["train_seconds"] is not None else "-"
        cells = [str(row["number"]), state, value, *settings, str(row["evaluations"]), seconds, row["worker"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _confirmation_lines(record: dict[str, Any]) -> list[str]:
    found = record.get("confirmation")
    if record.get("confirm_seeds", 0) == 0:
        return ["- confirmation: none (tune.confirm: 0), so no best_recipe.yaml; the best values are above"]
    if found is None:
        return ["- confirmation: not finished (run the same command again to finish it); best_recipe.yaml waits for it"]
    lines = [f"- verdict: {found['verdict']}"]
    if found.get("seeds"):
        recipe, mine = found["recipe_mean"], found["found_mean"]
        lines.append(
            f"- confirmation on fresh seeds {', '.join(map(str, found['seeds']))} at the recipe's own settings: "
            f"found {_mean_std(mine, found['found_std'])}, recipe's own {_mean_std(recipe, found['recipe_std'])}"
        )
    return [*lines, f"- the best settings as a recipe, with this verdict: `{BEST_RECIPE}`"]


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "diverged"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _best_recipe(view: Study, best: dict[str, Any], found: dict[str, Any]) -> str:
    """The recipe as the user wrote it (no tune section, no tune.search_only settings) with the best values in."""
    loaded = view.space.loaded
    recipe = view.space.recipe(best["values"], Path("unused"), search=False)
    raw = recipe.recipe.model_dump(mode="json")
    raw.pop("tune")
    raw["output"]["dir"] = None  # a new run folder under output.root, as for any recipe
    header = [
        f"# The best settings of tune study '{view.name}' (trial {best['number']}: eval {view.metric} "
        f"{best['value']:.4f} in the search), found by `nlp-transfer tune {loaded.path}`:",
        f"#   {describe(best['values'])}",
        f"# Verdict on fresh seeds: {found['verdict']}",
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
