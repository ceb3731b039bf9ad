"""`nlp-transfer tune RECIPE`: hyperparameter search over any recipe fields with Optuna (TPE sampling, trials
pruned on the eval metric after each evaluation), in a study that a killed session resumes and that several
workers, on one machine or several, can share (storage.py).

  space.py    the recipe's tune.space as Optuna distributions; every bound and choice checked before any work
  storage.py  the study's database (SQLite in the tune folder, or --storage URL), heartbeats, joining a study
  worker.py   one worker's loop: trials until the study has its count or the time is up
  trial.py    one trial on tune.seeds seeds (their mean is its score), pruning callback, stability guard, which
              trial may be crowned (learned, never diverged)
  confirm.py  the best settings and the recipe's own retrained on fresh seeds; the paired verdict
  report.py   trials.md / trials.json, the verdict, best_recipe.yaml (only beside a verdict), figures; only the
              best trial's run folder is kept
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core import distributed
from nlp_transfer.core.files import check_output_folder
from nlp_transfer.recipe import LoadedRecipe, lower_is_better
from nlp_transfer.studies.tune.confirm import run_confirmation
from nlp_transfer.studies.tune.report import Study, write_report
from nlp_transfer.studies.tune.space import SearchSpace
from nlp_transfer.studies.tune.storage import default_storage, open_storage, open_study, shown
from nlp_transfer.studies.tune.trial import crowned
from nlp_transfer.studies.tune.worker import Worker


@dataclass(frozen=True)
class TuneOptions:
    output_dir: Path | None = None  # default <output.root>/tune-<recipe name>: the same folder resumes the study
    storage: str | None = None  # a database URL shared by several workers; default SQLite in the tune folder
    study_name: str | None = None  # default tune-<recipe name>


@dataclass
class TuneResult:
    folder: Path
    record: dict[str, Any]  # trials.json


def run_tune(loaded: LoadedRecipe, options: TuneOptions) -> TuneResult:
    # Optuna asks and records each trial in one process; several tune workers share a study instead (--storage).
    distributed.refuse_launch("tune", "each process would ask Optuna for trials of its own")
    space = SearchSpace(loaded)  # no tune section, or a field no trial could train with: one line, nothing written
    space.check()
    tune = loaded.recipe.tune
    assert tune is not None
    metric = tune.metric or str(loaded.recipe.train.metric_for_best)
    direction = "minimize" if lower_is_better(metric) else "maximize"
    folder = options.output_dir or Path(loaded.recipe.output.root) / f"tune-{loaded.name}"
    check_output_folder(folder, "--output-dir")  # a file above it or an unwritable place, before any trial
    name = options.study_name or f"tune-{loaded.name}"
    if options.storage is None:
        folder.mkdir(parents=True, exist_ok=True)  # the SQLite file lives here
    url = options.storage or default_storage(folder)
    storage = open_storage(url, tune.heartbeat_seconds)
    study = open_study(storage, name, loaded, direction, shown(url))
    folder.mkdir(parents=True, exist_ok=True)
    done = sum(t.state.is_finished() and t.value is not None for t in study.get_trials(deepcopy=False))
    print(
        f"tune folder: {folder}; study '{name}' in {shown(url)} ({done} trials done before this session); "
        f"run the same command again to resume, or on other machines with --storage to add workers",
        flush=True,
    )
    worker = Worker(study=study, space=space, spec=tune, folder=folder, metric=metric, seed=loaded.recipe.train.seed)
    try:
        worker.run()
        best = crowned(study)
        if best is not None and tune.confirm:  # the search is over: is its best better than the recipe's own?
            run_confirmation(study, space, folder, metric, best)
    finally:  # an interrupted session still leaves the table of what finished
        view = Study(
            study=study, name=name, storage=shown(url), metric=metric, wanted=tune.trials, space=space, folder=folder
        )
        record = write_report(view)
    return TuneResult(folder=folder, record=record)


__all__ = ["TuneOptions", "TuneResult", "run_tune"]
