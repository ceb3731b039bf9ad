"""Limits the model sets (position embeddings, depth, module names, vocabulary), checked against its config and a
weightless skeleton before the data is read and the weights load; and the libraries' loading chatter kept off the
terminal, so that a command that fails on bad input prints exactly its one error line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv


def only_line(result: Any, *fragments: str) -> str:
    """Exit code 2, and the command's whole output, stdout and stderr, is one error line holding the fragments."""
    line = user_error(result, *fragments)
    assert [x for x in (result.stdout + result.stderr).splitlines() if x.strip()] == [line]
    return line


@pytest.fixture
def no_weights_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading weights or reading data fails the test: the checks must come before both."""
    import nlp_transfer.train.pipeline

    def forbidden(what: str) -> Any:
        def fail(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"{what} before the recipe was checked against the model")

        return fail

    monkeypatch.setattr(nlp_transfer.train.pipeline, "load_data", forbidden("the data was read"))
    monkeypatch.setattr(nlp_transfer.train.pipeline, "load_model", forbidden("the weights were loaded"))


@pytest.mark.parametrize(
    ("architecture", "allowed"), [("bert", 512), ("roberta", 512), ("gpt2", 512), ("distilbert", 512)]
)
def test_max_length_beyond_the_position_embeddings(
    tmp_path: Path, tiny_models: dict[str, Path], no_weights_no_data: None, architecture: str, allowed: int
) -> None:
    """RoBERTa has 514 position embeddings but numbers positions after its padding index: 512 tokens fit."""
    recipe = write_recipe(tmp_path, tiny_models[architecture], write_sentiment_csv(tmp_path / "data.csv"))
    for max_length in (allowed + 1, 1024):
        only_line(
            invoke("run", recipe, "-o", f"task.max_length={max_length}"),
            f"task.max_length: {max_length}",
            f"reads at most {allowed} tokens",
            f"set task.max_length to {allowed} or less",
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("method", "fragments"),
    [
        ({"name": "unfreeze_last", "layers": 9}, ["method.layers: 9", "the model has 2 layers"]),
        ({"name": "lora", "target_modules": ["q_proj"]}, ["method.target_modules", "'q_proj' not found", "query"]),
        ({"name": "probe", "layer": 12}, ["method.layer: 12", "the model has 2 layers"]),
        ({"name": "probe_then_finetune", "unfreeze_last": 5}, ["method.unfreeze_last: 5", "2 layers"]),
    ],
    ids=["unfreeze_last", "lora", "probe", "probe_then_finetune"],
)
def test_method_settings_are_checked_on_a_weightless_skeleton(
    tmp_path: Path,
    tiny_models: dict[str, Path],
    no_weights_no_data: None,
    method: dict[str, Any],
    fragments: list[str],
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], write_sentiment_csv(tmp_path / "data.csv"), method=method)
    only_line(invoke("run", recipe), *fragments)
    assert not (tmp_path / "run").exists()


def test_a_tokenizer_larger_than_the_embeddings(
    tmp_path: Path, tiny_models: dict[str, Path], no_weights_no_data: None
) -> None:
    small = tmp_path / "small-vocabulary"
    shutil.copytree(tiny_models["bert"], small)
    config = json.loads((small / "config.json").read_text(encoding="utf-8"))
    (small / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}), encoding="utf-8")
    recipe = write_recipe(tmp_path, small, write_sentiment_csv(tmp_path / "data.csv"))
    only_line(invoke("run", recipe), "its tokenizer has 30522 tokens but the model's embeddings hold 1000")


def test_the_checks_pass_settings_that_fit(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The skeleton dry run refuses nothing a real run accepts: the largest settings that fit train."""
    data = write_sentiment_csv(tmp_path / "data.csv")
    for name, method in {
        "lora": {"name": "lora", "r": 2, "target_modules": ["query", "attention.output.dense"]},
        "probe": {"name": "probe", "layer": 2, "pooling": "mean"},
        "unfreeze": {"name": "unfreeze_last", "layers": 2},
    }.items():
        recipe = write_recipe(tmp_path / name, tiny_models["roberta"], data, method=method, task={"max_length": 512})
        result = invoke("run", recipe, "-o", "train.max_steps=1")
        assert result.exit_code == 0, f"{name}: {result.output}"


def test_a_run_keeps_the_load_report_in_its_log(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """transformers' load report (the new head's weights) goes to run.log, not to the terminal."""
    body = base_without_head(tiny_models["bert"], tmp_path / "body")
    recipe = write_recipe(tmp_path, body, write_sentiment_csv(tmp_path / "data.csv"))
    result = invoke("run", recipe, "-o", "train.max_steps=1")
    assert result.exit_code == 0, result.output
    assert "LOAD REPORT" not in result.output and "Loading weights" not in result.output
    log = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert "LOAD REPORT" in log and "classifier.weight" in log


def base_without_head(model: Path, folder: Path) -> Path:
    """The encoder alone (BertModel) with its tokenizer: loading it with a task head reports the head as new."""
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(model).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)
    return folder


# ---- the whole output of a failing command is its one error line, in a real process ------------------------------


@pytest.mark.subprocess
def test_representative_failures_print_one_line_and_nothing_else(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """In fresh processes (transformers' own stderr handler and every progress bar are live there), each of these
    prints exactly one line: before, they came under a weight-loading bar and a load report, or a traceback."""
    body = base_without_head(tiny_models["bert"], tmp_path / "body")
    recipe = write_recipe(tmp_path / "r", body, write_sentiment_csv(tmp_path / "data.csv"))
    trained = tmp_path / "r" / "run"
    assert invoke("run", recipe, "-o", "train.max_steps=1").exit_code == 0
    damaged = tmp_path / "damaged"
    shutil.copytree(trained, damaged)
    (damaged / "model.safetensors").write_bytes((trained / "model.safetensors").read_bytes()[:1000])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\ngood,pos\nbad, really,neg\n", encoding="utf-8")
    cases = [
        (("run", recipe, "-o", "method.name=unfreeze_last", "-o", "method.layers=9", "--overwrite"), "method.layers"),
        (("predict", damaged, "great"), "is cut short"),
        (("evaluate", trained, "--data", ragged), "line 3 has 3 fields"),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = [  # all at once: most of each one's time is importing torch and transformers
        subprocess.Popen(
            [sys.executable, "-m", "nlp_transfer.cli", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args, _ in cases
    ]
    for process, (args, fragment) in zip(started, cases, strict=True):
        stdout, stderr = process.communicate(timeout=300)
        lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
        assert process.returncode == 2, (args, stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, lines)
