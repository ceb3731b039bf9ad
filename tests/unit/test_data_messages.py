"""Data files and recipes read the wrong way, told in terms of the file: byte-order marks, ragged csv rows, a
delimiter other than the comma (data.delimiter), a text column of numbers, list labels (several labels per text),
and a model named without a mapping. Exit code 2, one line, nothing written; and the fix the line names works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from nlp_transfer.data.readers import ReadOptions, read_local
from tests.conftest import invoke, user_error, write_recipe

ROWS = [("a great movie", "positive"), ("an awful movie", "negative")] * 6


def csv_text(delimiter: str = ",") -> str:
    return "".join(f"{text}{delimiter}{label}\n" for text, label in [("text", "label"), *ROWS])


def only_line(result: Any, *fragments: str) -> str:
    line = user_error(result, *fragments)
    assert [x for x in (result.stdout + result.stderr).splitlines() if x.strip()] == [line]
    return line


def trains(recipe: Path, *overrides: str) -> None:
    result = invoke("run", recipe, "-o", "train.max_steps=1", *overrides)
    assert result.exit_code == 0, result.output


# ---- byte-order marks ----------------------------------------------------------------------------------------------


def test_a_utf16_data_file_is_named_as_such_and_its_encoding_reads_it(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    data = tmp_path / "utf16.csv"
    data.write_text(csv_text(), encoding="utf-16")  # with a byte-order mark, as Excel's "Unicode text" writes
    recipe = write_recipe(tmp_path, tiny_models["bert"], data)
    line = only_line(
        invoke("run", recipe), f"{data} is UTF-16", "byte-order mark", "set data.encoding to utf-16", "UTF-8"
    )
    assert "latin-1" not in line
    assert not (tmp_path / "run").exists()
    trains(recipe, "-o", "data.encoding=utf-16")


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    for suffix, text in ((".csv", csv_text()), (".jsonl", '{"text": "a", "label": 1}\n')):
        data = tmp_path / f"bom{suffix}"
        data.write_text(text, encoding="utf-8-sig")
        rows = read_local(data, ReadOptions(format=suffix[1:]), "data.train")
        assert rows.column_names == ["text", "label"]


def test_recipes_in_utf16_or_with_a_bom_load_and_other_bytes_are_an_encoding_error(
    tmp_path: Path, sentiment_csv: Path
) -> None:
    text = write_recipe(tmp_path, "some-model", sentiment_csv).read_text(encoding="utf-8")
    for encoding in ("utf-16", "utf-8-sig"):
        recipe = tmp_path / f"{encoding}.yaml"
        recipe.write_text(text, encoding=encoding)
        result = invoke("validate", recipe)
        assert result.exit_code == 0, result.output
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(text.replace("some-model", "modèle").encode("latin-1"))
    line = only_line(invoke("validate", latin), "not UTF-8 or UTF-16 text", "byte 0xe8", "save the recipe as UTF-8")
    assert "YAML" not in line


# ---- csv rows and delimiters ---------------------------------------------------------------------------------------


def test_a_ragged_csv_row_is_named_by_its_line(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = tmp_path / "ragged.csv"
    data.write_text(csv_text() + "good, but long,positive\n", encoding="utf-8")
    recipe = write_recipe(tmp_path, tiny_models["bert"], data)
    line = only_line(invoke("run", recipe), f"{data} line 14 has 3 fields but the header row has 2", "quote the fields")
    assert "data.format" not in line


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_separated_by_another_character_names_the_delimiter_that_reads_it(
    tmp_path: Path, tiny_models: dict[str, Path], delimiter: str
) -> None:
    data = tmp_path / "semicolons.csv"
    data.write_text(csv_text(delimiter).replace("a great movie", "a great, great movie"), encoding="utf-8")
    recipe = write_recipe(tmp_path, tiny_models["bert"], data)
    shown = '"\\t"' if delimiter == "\t" else repr(delimiter)
    only_line(invoke("run", recipe), f"its lines look separated by {shown}", f"set data.delimiter to {shown}")
    assert not (tmp_path / "run").exists()
    trains(recipe, "-o", f"data.delimiter={json.dumps(delimiter)}")


def test_each_file_may_name_its_own_delimiter_and_evaluate_takes_one(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    train = tmp_path / "train.csv"
    train.write_text(csv_text(";"), encoding="utf-8")
    held = tmp_path / "eval.csv"
    held.write_text(csv_text(), encoding="utf-8")
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], train, data={"train": {"path": str(train), "delimiter": ";"}, "eval": str(held)}
    )
    trains(recipe)
    run = tmp_path / "run"
    only_line(invoke("evaluate", run, "--data", train), "set --delimiter to ';'")
    result = invoke("evaluate", run, "--data", train, "--delimiter", ";")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == len(ROWS)
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"text": "a", "label": "positive"}\n', encoding="utf-8")
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw["data"]["eval"] = {"path": str(jsonl), "delimiter": ";"}
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    only_line(invoke("run", recipe, "--overwrite"), "delimiter is for csv/tsv files", "is jsonl")


# ---- columns that hold the wrong kind of value -----------------------------------------------------------------------


def test_a_text_column_of_numbers_is_a_wrong_column_not_empty_texts(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("id,review,label\n" + "".join(f"{i},{t},{y}\n" for i, (t, y) in enumerate(ROWS)), "utf-8")
    recipe = write_recipe(tmp_path, tiny_models["bert"], data, task={"text": "id"})
    line = only_line(
        invoke("run", recipe), "column 'id' (task.text) holds numbers (int64), not text", "columns of text: review"
    )
    assert "every text is empty" not in line


def test_list_labels_are_several_labels_per_text(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = tmp_path / "tags.jsonl"
    rows = [{"text": "slow and bad", "label": ["bad", "long"]}, {"text": "fine", "label": ["good"]}] * 6
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    recipe = write_recipe(tmp_path, tiny_models["bert"], data)
    only_line(
        invoke("run", recipe),
        "column 'label' (task.label) holds lists of labels (e.g. ['bad', 'long'])",
        "a list is several labels for one text",
        "task.name: multi_label",
    )
    assert not (tmp_path / "run").exists()


# ---- a model named without a mapping -------------------------------------------------------------------------------


def test_model_task_and_method_may_be_given_by_name_alone(tmp_path: Path, sentiment_csv: Path) -> None:
    recipe = write_recipe(tmp_path, "some-model", sentiment_csv)
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw.update(model="distilbert-base-uncased", method="lora")
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    shown = yaml.safe_load(invoke("show", recipe).stdout)
    assert shown["model"]["name"] == "distilbert-base-uncased" and shown["model"]["revision"] is None
    assert shown["method"]["name"] == "lora" and shown["method"]["r"] > 0
