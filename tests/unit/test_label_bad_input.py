"""Bad labels are one line, exit code 2, and nothing written: mixed label shapes, an empty label set the recipe
forbids, labels outside the declared names, regression targets that are not finite numbers, a names file that does
not match the ids, and a multi-label model folder without its thresholds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, user_error, write_recipe
from tests.unit.labels_data import emotion_rows, write_jsonl


def csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def refused(tmp_path: Path, model: Path, data: Path, task: dict[str, Any], *fragments: str, **sections: Any) -> str:
    recipe = write_recipe(tmp_path, model, data, task={"max_length": 16, **task}, **sections)
    line = user_error(invoke("run", recipe), *fragments)
    assert not (tmp_path / "run").exists(), "nothing is written for bad input"
    return line


GOOD_ROWS = [f'"happy day {i}",joy' for i in range(12)] + [f'"angry day {i}",anger' for i in range(12)]


def test_one_column_mixing_lists_and_delimited_strings(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = csv(tmp_path / "d.csv", "text,labels", [*GOOD_ROWS, '"both 1","[""joy"", ""anger""]"'])
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "multi_label", "label": "labels"},
        "column 'labels' mixes label shapes",
        "is a delimited string",
        "is a list",
    )


def test_an_empty_label_set_when_the_recipe_forbids_it(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = emotion_rows(20, 0)
    rows[7]["labels"], rows[7]["text"] = [], "nothing to feel"
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "multi_label", "label": "labels", "allow_empty": False},
        "the row with text 'nothing to feel' has no label",
        "task.allow_empty",
    )


def test_labels_outside_the_declared_names(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", emotion_rows(20, 0))
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "multi_label", "label": "labels", "labels": ["joy", "anger"]},
        "label 'fear' is not among task.labels",
    )
    refused(
        tmp_path,
        tiny_models["bert"],
        csv(tmp_path / "c.csv", "text,label", [*GOOD_ROWS, '"scared 1",fear']),
        {"name": "classification", "labels": ["joy", "anger"]},
        "'fear' (1 rows) are not among task.labels",
    )


@pytest.mark.parametrize(("value", "said"), [("abc", "'abc', not a finite number"), ("", "is empty"), ("inf", "inf")])
def test_regression_targets_must_be_finite_numbers(
    value: str, said: str, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    rows = [f'"text {i}",{i * 0.5}' for i in range(20)] + [f'"bad row",{value}']
    data = csv(tmp_path / "d.csv", "text,y", rows)
    line = refused(
        tmp_path, tiny_models["bert"], data, {"name": "regression", "label": "y"}, "text 'bad row', column 'y'"
    )
    assert said in line


def test_a_names_file_that_does_not_match_the_ids(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = csv(tmp_path / "d.csv", "text,ids", [f'"text {i}","{i % 4}"' for i in range(20)])
    names = tmp_path / "names.txt"
    names.write_text("joy\nanger\nfear\n", encoding="utf-8")
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "multi_label", "label": "ids", "labels_file": str(names)},
        "label id 3 is outside the 3 names of task.labels_file",
    )
    names.write_text("0\tjoy\n2\tanger\n", encoding="utf-8")
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "classification", "label": "ids", "labels_file": str(names)},
        "the ids must be 0 to 1",
    )
    names.write_text("joy\njoy\n", encoding="utf-8")
    refused(
        tmp_path,
        tiny_models["bert"],
        data,
        {"name": "classification", "label": "ids", "labels_file": str(names)},
        "names 'joy' more than once",
    )


def test_a_multi_label_model_without_its_thresholds(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", emotion_rows(24, 0))
    recipe = write_recipe(tmp_path, tiny_models["bert"], data, task={"name": "multi_label", "label": "labels"})
    assert invoke("run", recipe).exit_code == 0
    damaged = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", damaged)
    (damaged / "thresholds.json").unlink()
    user_error(invoke("predict", damaged, "happy"), "thresholds.json is missing", "train the run again")
    user_error(invoke("evaluate", damaged, "--data", data), "thresholds.json is missing")
    (damaged / "thresholds.json").write_text(json.dumps({"thresholds": {"joy": 0.5}}), encoding="utf-8")
    user_error(invoke("predict", damaged, "happy"), "does not give a threshold for every label")


def test_recipe_level_contradictions_are_caught_on_validation(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    model = tiny_models["bert"]
    recipe = write_recipe(tmp_path, model, "x.csv")
    cases = [
        ("task={name: multi_label, labels: [a, a]}", "names 'a' more than once"),
        ("task={name: multi_label, labels: [a], labels_file: n.txt}", "keep one"),
        ("task={name: multi_label, label: [a, b], labels: [a, b]}", "the column names are the label names"),
        ("task={name: classification, truncation: tail, text_pair: b}", "with task.text_pair use head or windows"),
        ("task={name: regression, truncation: windows, max_length: 32, stride: 16}", "less than half"),
        ("task={name: classification, head_tokens: 10}", "for truncation head_tail"),
    ]
    for override, fragment in cases:
        user_error(invoke("validate", recipe, "-o", override), fragment)
    both = write_recipe(
        tmp_path / "both", model, "x", data={"train": {"path": "a.txt", "label": 1, "label_lines": "b"}}
    )
    user_error(invoke("run", both), "label and label_lines both label its rows")


def test_rows_per_class_need_classes(tmp_path: Path) -> None:
    """data.max_train_per_class on a regression task is refused at validate, naming the field and the fix."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model: m\ntask: {name: regression, label: score}\nmethod: full\n"
        "data: {train: t.csv, max_train_per_class: 8}\n",
        encoding="utf-8",
    )
    user_error(invoke("validate", recipe), "data.max_train_per_class", "data.max_train_samples")


def test_class_weights_messages_speak_to_the_shape_given(tmp_path: Path, sentiment_csv: Path) -> None:
    """A list was meant: the message says what is wrong in the list, not that it is neither 'none' nor 'balanced'."""
    cases = {
        "list": ([1, "a"], ("task.class_weights.1", "valid number")),
        "negative": ([1, -2], ("task.class_weights.1", "greater than 0")),
        "typo": ("balancd", ("task.class_weights", "did you mean 'balanced'")),
    }
    for name, (weights, fragments) in cases.items():
        recipe = write_recipe(tmp_path / name, "m", sentiment_csv, task={"class_weights": weights})
        line = user_error(invoke("validate", recipe), *fragments)
        assert "literal[" not in line and ("'none' or 'balanced'" not in line) == isinstance(weights, list), line
