"""A bug is a bug: an error that is not the user's input (here a TypeError standing for any bug) is never turned into
"check your file" (exit 2). The places that catch library errors catch only what the libraries raise for bad input;
the CLI says a bug is one (exit 1, "please report"), and --debug shows its traceback."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from nlp_transfer.core.errors import UserError
from tests.conftest import invoke, write_recipe


def _bug(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("a bug inside the library call")


def test_a_bug_while_reading_data_exits_1_asking_for_a_report(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    monkeypatch.setattr(datasets, "load_dataset", _bug)
    result = invoke("run", recipe)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: TypeError: a bug inside the library call"), result.stderr
    assert "please report" in lines[-1] and "--debug" in lines[-1]
    assert "Traceback" not in result.output and "could not read" not in result.output

    debug = invoke("--debug", "run", recipe)
    assert isinstance(debug.exception, TypeError)  # --debug: the exception itself, for its traceback


def test_a_malformed_file_is_still_the_users_problem(tmp_path: Path) -> None:
    from nlp_transfer.data.readers import ReadOptions, read_local

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": 1}\n{"text": \n', encoding="utf-8")
    with pytest.raises(UserError, match="could not read"):
        read_local(bad, ReadOptions(format="json"), "data.train")


def test_a_bug_loading_an_extra_metric_is_not_a_bad_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    from nlp_transfer.recipe import ExtraMetric
    from nlp_transfer.tasks.extra_metrics import _load

    monkeypatch.setattr(evaluate, "load", _bug)
    with pytest.raises(TypeError):
        _load(ExtraMetric(path="no_such_metric_anywhere"), "train.extra_metrics[0]", None)


def test_a_bug_in_the_compile_check_is_not_a_machine_that_cannot_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    from nlp_transfer.train.acceleration import check_compile

    monkeypatch.setattr(torch, "compile", _bug)
    with pytest.raises(TypeError):
        check_compile.__wrapped__()


def test_the_skeleton_check_lets_only_what_meta_tensors_cannot_do_pass() -> None:
    from nlp_transfer.methods.base import check_on_skeleton

    def method(error: Exception) -> Any:
        def prepare(model: Any, task: Any) -> Any:
            raise error

        return SimpleNamespace(prepare=prepare)

    skeleton = torch.nn.Linear(2, 2)
    check_on_skeleton(method(NotImplementedError("Cannot copy out of meta tensor")), skeleton, None)  # left to later
    with pytest.raises(TypeError):
        check_on_skeleton(method(TypeError("a bug in prepare")), skeleton, None)
    with pytest.raises(UserError):
        check_on_skeleton(method(UserError("unfreeze_last: beyond the depth")), skeleton, None)
