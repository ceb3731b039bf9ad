"""Bad input, as a user meets it on the command line: exit code 2, one `error: ...` line on stderr that names the
file or recipe field and the fix, no traceback (unless --debug), and nothing half-written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nlp_transfer.runfolder.folder import read_status
from tests.conftest import invoke, user_error, write_recipe

# Real runs stop after two optimizer steps: enough to write a complete run folder in a few seconds on a CPU.
QUICK = ["-o", "train.max_steps=2"]


def recipe(folder: Path, model: Path | str, train_file: Path | str, /, **sections: dict[str, Any]) -> Path:
    """write_recipe, then update sections (write_recipe's `train` parameter is the data file, so it cannot take a
    `train` section)."""
    path = write_recipe(folder, model, train_file)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def assert_not_started(run: Path) -> None:
    """Bad input (recipe, data, labels, model) is found before the run folder is created: nothing is left behind."""
    assert not run.exists(), sorted(p.name for p in run.iterdir())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


# ---- 1. missing files ---------------------------------------------------------------------------------------


def test_missing_recipe_file(tmp_path: Path) -> None:
    missing = tmp_path / "recipes" / "nope.yaml"
    error = user_error(invoke("run", missing), str(missing), "recipe file not found", "check the path")
    assert error.startswith(f"error: {missing}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.subprocess
def test_missing_recipe_file_in_a_real_process(tmp_path: Path) -> None:
    """The installed CLI as a process: exit code 2 and exactly one line on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "nlp_transfer.cli", "run", "nope.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("error: nope.yaml: recipe file not found; check the path")
    assert list(tmp_path.iterdir()) == []


def test_missing_data_file_lists_where_it_looked(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    path = recipe(tmp_path, tiny_models["bert"], "trian.csv")
    error = user_error(invoke("run", path), "data.train", "'trian.csv' not found", "Fix data.train")
    # every place it looked: the working directory, beside the recipe, the data root
    assert str(Path.cwd() / "trian.csv") in error
    assert str(tmp_path / "trian.csv") in error
    assert "data root is" in error
    assert_not_started(tmp_path / "run")


# ---- 2. unknown column --------------------------------------------------------------------------------------


def test_unknown_column_lists_columns_and_suggests_the_close_one(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("sentence,label\n" + "".join(f"good {i},pos\nbad {i},neg\n" for i in range(10)), encoding="utf-8")
    path = recipe(tmp_path, tiny_models["bert"], data, task={"text": "sentense"})
    user_error(
        invoke("run", path),
        str(data),
        "column 'sentense' (task.text) not found",
        "did you mean 'sentence'?",
        "columns are: sentence, label",
        "Fix task.text",
    )
    assert_not_started(tmp_path / "run")


# ---- 3. unknown names -> did you mean -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "values", "fragments"),
    [
        ("task", {"name": "clasification"}, ["task.name", "unknown task 'clasification'", "'classification'"]),
        ("method", {"name": "ful"}, ["method.name", "unknown method 'ful'", "did you mean 'full'?"]),
        (
            "train",
            {"learnin_rate": 1e-3},
            ["train.learnin_rate", "unknown field", "did you mean 'learning_rate'?"],
        ),
    ],
    ids=["task", "method", "field"],
)
def test_unknown_name_suggests_the_close_one(
    tmp_path: Path, sentiment_csv: Path, section: str, values: dict[str, Any], fragments: list[str]
) -> None:
    path = recipe(tmp_path, "unused-model", sentiment_csv, **{section: values})
    user_error(invoke("run", path), str(path), "did you mean", *fragments)
    assert_not_started(tmp_path / "run")


def test_unknown_field_in_an_override_suggests_the_close_one(tmp_path: Path, sentiment_csv: Path) -> None:
    path = recipe(tmp_path, "unused-model", sentiment_csv)
    user_error(invoke("run", path, "-o", "train.batchsize=4"), "train.batchsize", "did you mean 'batch_size'?")
    assert_not_started(tmp_path / "run")


# ---- 4. wrong types -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        ({"epochs": "many"}, ["train.epochs", "valid number", "'many'"]),
        ({"batch_size": -1}, ["train.batch_size", "greater than 0", "-1"]),
    ],
    ids=["epochs-many", "batch-size-negative"],
)
def test_wrong_type_names_the_field_and_the_value(
    tmp_path: Path, sentiment_csv: Path, values: dict[str, Any], fragments: list[str]
) -> None:
    path = recipe(tmp_path, "unused-model", sentiment_csv, train=values)
    user_error(invoke("run", path), str(path), *fragments)
    assert_not_started(tmp_path / "run")


# ---- 5. empty dataset ---------------------------------------------------------------------------------------


def test_csv_with_only_a_header(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("text,label\n", encoding="utf-8")
    path = recipe(tmp_path, tiny_models["bert"], data)
    user_error(
        invoke("run", path), "data.train", str(data), "a header row but no data rows", "point data.train at a file"
    )
    assert_not_started(tmp_path / "run")


# ---- 6. eval labels not seen in training --------------------------------------------------------------------


def test_eval_label_not_in_training(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    eval_csv = tmp_path / "eval.csv"
    eval_csv.write_text("text,label\ngreat fun,positive\nso so,neutral\nawful,negative\n", encoding="utf-8")
    path = recipe(tmp_path, tiny_models["bert"], sentiment_csv, data={"eval": str(eval_csv)})
    user_error(
        invoke("run", path),
        f"data.eval ({eval_csv})",
        "'neutral' (1 rows)",
        "'negative', 'positive'",
        "task.labels",
    )
    assert_not_started(tmp_path / "run")


# ---- 7. undecodable bytes -----------------------------------------------------------------------------------


def latin1_csv(tmp_path: Path, sentiment_csv: Path) -> Path:
    """The sentiment data with one latin-1 row (0xe9, é) as line 4."""
    lines = sentiment_csv.read_bytes().splitlines(keepends=True)
    data = tmp_path / "latin1.csv"
    data.write_bytes(b"".join(lines[:3]) + "café au lait,positive\n".encode("latin-1") + b"".join(lines[3:]))
    return data


def test_undecodable_bytes_name_the_line_and_suggest_the_encoding(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    data = latin1_csv(tmp_path, sentiment_csv)
    path = recipe(tmp_path, tiny_models["bert"], data)
    user_error(invoke("run", path), "data.train", f"{data} line 4", "utf-8", "0xe9", "data.encoding", "latin-1")
    assert_not_started(tmp_path / "run")


def test_the_suggested_encoding_is_accepted(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    data = latin1_csv(tmp_path, sentiment_csv)
    path = recipe(tmp_path, tiny_models["bert"], data)
    result = invoke("run", path, "-o", "data.encoding=latin-1", *QUICK)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert read_status(tmp_path / "run")["state"] == "complete"


# ---- 8, 9. output folders -----------------------------------------------------------------------------------


def test_a_complete_run_is_replaced_only_with_overwrite(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    path = recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    run = tmp_path / "run"
    first = invoke("run", path, *QUICK)
    assert first.exit_code == 0, f"{first.output}\n{first.exception!r}"
    assert read_status(run)["state"] == "complete"
    before, before_siblings = snapshot(run), siblings(run)

    user_error(invoke("run", path, *QUICK), str(run), "already holds a complete run", "--overwrite")
    assert snapshot(run) == before  # byte for byte: not even the status file was touched
    assert siblings(run) == before_siblings  # nothing moved aside

    (run / "from-the-old-run").write_text("", encoding="utf-8")
    replaced = invoke("run", path, *QUICK, "--overwrite")
    assert replaced.exit_code == 0, f"{replaced.output}\n{replaced.exception!r}"
    assert read_status(run)["state"] == "complete"
    assert not (run / "from-the-old-run").exists()  # a new folder, not the old one written over
    assert siblings(run) == before_siblings  # the old run was deleted, not left beside the new one


def test_a_folder_that_is_not_a_run_is_never_overwritten(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    path = recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    mine = tmp_path / "my-stuff"
    mine.mkdir()
    (mine / "thesis.tex").write_text("three years of work", encoding="utf-8")
    around = siblings(mine)
    for extra in ([], ["--overwrite"]):
        user_error(
            invoke("run", path, "--output-dir", mine, *extra),
            str(mine),
            "not an nlp-transfer run folder",
            "choose another output.dir",
        )
        assert snapshot(mine) == {"thesis.tex": b"three years of work"}
        assert siblings(mine) == around  # nothing moved aside, no run folder made elsewhere


# ---- 10. hub id offline -------------------------------------------------------------------------------------


def test_unreachable_hub_model_offline(tmp_path: Path, sentiment_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = recipe(tmp_path, "someone/no-such-model", sentiment_csv)
    user_error(
        invoke("run", path),
        "model 'someone/no-such-model' not found",
        f"looked for a local folder at {Path.cwd() / 'someone/no-such-model'}",
        "Hugging Face cache",
        "offline mode (HF_HUB_OFFLINE=1)",
        "set model.name",
    )
    assert_not_started(tmp_path / "run")


# ---- 11. overrides and train.trainer ------------------------------------------------------------------------


def test_override_without_equals(tmp_path: Path, sentiment_csv: Path) -> None:
    path = recipe(tmp_path, "unused-model", sentiment_csv)
    user_error(
        invoke("run", path, "-o", "train.learning_rate"),
        "override 'train.learning_rate'",
        "expected key.sub=value",
        "-o train.learning_rate=3e-5",
    )
    assert_not_started(tmp_path / "run")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("lr_scheduler_typ", "did you mean 'lr_scheduler_type'?"), ("warmup_ratioo", "did you mean '")],
)
def test_unknown_trainer_passthrough_key(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path, key: str, suggestion: str
) -> None:
    path = recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"trainer": {key: 0.1}})
    user_error(invoke("run", path), f"train.trainer.{key}", "not a TrainingArguments field", suggestion)
    assert_not_started(tmp_path / "run")


# ---- 12. predict on a folder that is not a complete run -----------------------------------------------------


def test_predict_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    user_error(
        invoke("predict", folder, "great movie"), str(folder), "not an nlp-transfer model", "recipe.resolved.yaml"
    )
    user_error(invoke("predict", tmp_path / "nowhere", "great movie"), str(tmp_path / "nowhere"), "no such folder")
    assert snapshot(folder) == {"notes.txt": b"hello"}


@pytest.mark.parametrize(
    ("fault", "state", "code"), [(RuntimeError("disk full"), "failed", 1), (KeyboardInterrupt(), "interrupted", 130)]
)
def test_a_run_that_dies_in_training_never_looks_complete(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    sentiment_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: BaseException,
    state: str,
    code: int,
) -> None:
    import nlp_transfer.train.phases

    def dies(*args: object, **kwargs: object) -> None:
        raise fault

    monkeypatch.setattr(nlp_transfer.train.phases, "build_trainer", dies)
    run = tmp_path / "run"
    result = invoke("run", recipe(tmp_path, tiny_models["bert"], sentiment_csv))
    assert result.exit_code == code
    assert read_status(run).get("state") == state
    assert not (run / "metrics.json").exists() and not (run / "model.safetensors").exists()
    out = tmp_path / "predictions.jsonl"
    user_error(invoke("predict", run, "great movie", "--out", out), str(run), f"the run is {state}, not complete")
    assert not out.exists()
    assert not (tmp_path / ".predictions.jsonl.tmp").exists()


# ---- --debug ------------------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_debug_shows_the_traceback(tmp_path: Path, sentiment_csv: Path) -> None:
    path = recipe(tmp_path, "unused-model", sentiment_csv, train={"learnin_rate": 1e-3})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nlp_transfer.cli", *args, "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )

    plain = cli()
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    [line] = plain.stderr.splitlines()
    assert line.startswith("error: ") and "did you mean 'learning_rate'?" in line

    debug = cli("--debug")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "nlp_transfer.core.errors.UserError" in debug.stderr
    assert "did you mean 'learning_rate'?" in debug.stderr.splitlines()[-1]
