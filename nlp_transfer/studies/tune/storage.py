"""Where a study lives: an SQLite file in the tune folder by default, or any database URL Optuna's RDB storage takes
(PostgreSQL, MySQL) so that workers on several machines share one study.

Workers send a heartbeat while a trial runs. A trial whose worker fell silent for 3 heartbeats (killed, machine
lost) is marked failed by the next worker that looks, and queued again with the same settings (Optuna's
RetryHeartbeatStaleTrialCallback); so a killed worker costs the trial it was running, never the study.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import LoadedRecipe

STUDY_FILE = "study.db"
RETRIES = 2  # a trial whose worker dies is run again at most this many times
# Settings that may change between sessions of one study: more trials, another time budget, another heartbeat,
# more or fewer confirmation seeds.
RESUMABLE_CHANGES = ("trials", "timeout_minutes", "heartbeat_seconds", "confirm")


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError as err:
        raise UserError("nlp-transfer tune needs Optuna: pip install 'nlp-transfer[tune]'") from err
    # Our own line per trial says what Optuna's would; its warning for a failed trial would add a traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def default_storage(folder: Path) -> str:
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def shown(url: str) -> str:
    """The URL with its password masked: storage URLs are printed and recorded, secrets never are."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str, heartbeat_seconds: int) -> Any:
    """Optuna's RDB storage with heartbeats; a URL that cannot be opened is one line naming it (password masked)."""
    optuna = optuna_module()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError as err:
        raise UserError(
            f"--storage {shown(url)}: not a database URL; e.g. postgresql://user:password@host/db, "
            "mysql+pymysql://user:password@host/db or sqlite:////path/study.db"
        ) from err
    # SQLite: wait for the other workers' writes instead of failing; servers: give up on an unreachable host soon.
    connect = {"timeout": 60} if backend == "sqlite" else {"connect_timeout": 10}
    failure: Exception | None = None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": connect},
                    heartbeat_interval=heartbeat_seconds,
                    grace_period=3 * heartbeat_seconds,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=RETRIES),
                )
        except SQLAlchemyError as err:
            failure = err
            if "already exists" not in str(err) and "locked" not in str(err):
                break  # unreachable, refused, no such database: trying again would not help
            time.sleep(1.0 + attempt)  # two workers started together raced to create the tables
        except (ImportError, ValueError) as err:  # no driver installed for this database, or a malformed URL
            failure = err
            break
    reason = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    raise UserError(
        f"--storage {shown(url)}: cannot open the study database ({reason}); check the host, port, user, password "
        "and database name, and that its driver is installed (psycopg2 for postgresql://, PyMySQL for "
        "mysql+pymysql://)"
    ) from failure


def identity(loaded: LoadedRecipe) -> dict[str, Any]:
    """What makes two sessions the same study: the resolved recipe, less the settings a session may change."""
    raw = loaded.recipe.model_dump(mode="json")
    raw["output"] = {}  # where runs go is the session's business (another machine, another folder)
    for name in RESUMABLE_CHANGES:
        raw["tune"].pop(name, None)
    return raw


# tune.pruner -> the Optuna pruner (given to each worker's study object: pruners live in the process, not the storage).
# Median and Hyperband wait for tune.startup_trials finished trials before they stop any.
PRUNERS: dict[str, Callable[[Any, int], Any]] = {
    "median": lambda optuna, startup: optuna.pruners.MedianPruner(n_startup_trials=startup),
    "hyperband": lambda optuna, startup: optuna.pruners.HyperbandPruner(),
    "none": lambda optuna, startup: optuna.pruners.NopPruner(),
}


def open_study(storage: Any, name: str, loaded: LoadedRecipe, direction: str, where: str) -> Any:
    """Create the study, or join it (another worker, a resumed session) when it was made from the same recipe.

    A study that exists is checked before anything is written into it: one made from another recipe, to the other
    direction, or by someone else (trials but no recipe of ours) is refused as it is found."""
    optuna = optuna_module()
    spec = loaded.recipe.tune
    pruner = PRUNERS[spec.pruner](optuna, spec.startup_trials) if spec is not None else None
    wanted = identity(loaded)
    if any(summary.study_name == name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)):
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        _check_joinable(study, name, where, wanted, direction)
    else:  # made here; a worker started at the same moment may make it first, and is then joined
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True, pruner=pruner
        )
        _check_joinable(study, name, where, wanted, direction)
    if study.user_attrs.get("recipe") is None:
        study.set_user_attr("recipe", wanted)
    return study


def _check_joinable(study: Any, name: str, where: str, wanted: dict[str, Any], direction: str) -> None:
    recorded = study.user_attrs.get("recipe")
    if recorded is None and study.get_trials(deepcopy=False):
        raise UserError(
            f"study '{name}' in {where} exists and was not made by nlp-transfer tune (it has trials but no recipe); "
            "choose another name with --study-name, or another --output-dir"
        )
    if recorded is not None and recorded != wanted:
        raise UserError(
            f"study '{name}' in {where} was made from a different recipe (or -o overrides); run it with the same "
            "recipe, or start another study with --study-name or --output-dir"
        )
    if study.direction.name.lower() != direction:
        raise UserError(
            f"study '{name}' in {where} was created to {study.direction.name.lower()}, this recipe's tune.metric "
            f"wants to {direction}; start another study with --study-name"
        )
