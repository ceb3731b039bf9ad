"""Two `nlp-transfer tune` workers on one SQLite study, one killed (SIGKILL) in the middle of a trial: the other
finishes the study with exactly its trial count, the killed trial is marked failed and run again, nothing counts
twice. Real processes, a tiny BERT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc

from tests.conftest import REPO, write_recipe, write_sentiment_csv

TRIALS = 4


def worker(recipe: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nlp_transfer", "tune", str(recipe), "--output-dir", str(out)]
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.subprocess
def test_a_killed_worker_costs_its_trial_not_the_study(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    data = write_sentiment_csv(tmp_path / "s.csv", copies=30)  # 360 rows: a trial takes a few seconds
    # Rates at which the tiny model learns these rows: the study crowns a best (a trial at the baseline is never one).
    space = {"train.learning_rate": {"low": 2e-3, "high": 8e-3, "log": True}, "train.epochs": [2]}
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        data,
        train={"batch_size": 8, "epochs": 2},
        tune={"trials": TRIALS, "space": space, "heartbeat_seconds": 1, "pruner": "none", "confirm": 0},
    )
    out = tmp_path / "tune"
    url = f"sqlite:///{(out / 'study.db').resolve()}"

    def study() -> optuna.Study | None:
        try:
            return optuna.load_study(study_name="tune-recipe", storage=url)
        except KeyError:  # not created yet
            return None
        except sqlalchemy.exc.OperationalError as err:  # the worker is creating the tables this very moment
            if "already exists" in str(err) or "locked" in str(err):
                return None
            raise

    first = worker(recipe, out, tmp_path / "first.log")
    wait_for(lambda: (out / "study.db").is_file() and study(), 120, "the first worker to create the study")
    second = worker(recipe, out, tmp_path / "second.log")
    try:

        def first_workers_trial() -> optuna.trial.FrozenTrial | None:
            running = study().get_trials(states=(optuna.trial.TrialState.RUNNING,))  # type: ignore[union-attr]
            return next((t for t in running if t.user_attrs.get("worker", "").endswith(f":{first.pid}")), None)

        victim = wait_for(first_workers_trial, 180, "a trial of the first worker")
        time.sleep(1.0)  # inside its training
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()

    trials = study().get_trials()  # type: ignore[union-attr]
    states = optuna.trial.TrialState
    finished = [t for t in trials if t.state in (states.COMPLETE, states.PRUNED)]
    assert len(finished) == TRIALS  # the count, exactly: the survivor took over the killed trial's place
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == states.FAIL  # marked failed once its heartbeat stopped ...
    retries = [t for t in finished if t.params == killed.params and t.number != killed.number]
    assert len(retries) == 1 and retries[0].user_attrs["worker"].endswith(f":{second.pid}")  # ... and run again
    assert not [t for t in trials if t.state in (states.RUNNING, states.WAITING)]

    record = json.loads((out / "trials.json").read_text())
    assert record["trials_finished"] == TRIALS
    rows = {row["number"]: row for row in record["trials"]}
    assert len(rows) == len(trials)  # each trial once
    assert rows[killed.number]["state"] == "worker lost"
    assert rows[retries[0].number]["retry_of"] == killed.number
    best = record["best"]["number"]
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial-{best}"]  # the killed trial's folder too
