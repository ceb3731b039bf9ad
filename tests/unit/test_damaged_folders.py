"""Damaged model and run folders, tokenizers that went missing, output paths that cannot be written, and run folders
without their records, as a user meets them on the command line: exit code 2, one `error: ...` line that names the
file and what to do, no traceback, and nothing written. Full, LoRA and QA run folders alike.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from nlp_transfer.runfolder.folder import TOKENIZER_RECORD
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv
from tests.unit.test_qa import write_qa_recipe

QA_ARGS = ("--question", "Who wrote it?", "--context", "It was written by Mary Shelley in 1818.")
PREDICT_ARGS: dict[str, tuple[str, ...]] = {"full": ("great movie",), "lora": ("great movie",), "qa": QA_ARGS}
WEIGHTS = {"full": "model.safetensors", "lora": "adapter_model.safetensors", "qa": "model.safetensors"}
CONFIG = {"full": "config.json", "lora": "adapter_config.json", "qa": "config.json"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Path]:
    """Complete runs of tiny BERT, two optimizer steps each: full and LoRA classification, full QA."""
    root = tmp_path_factory.mktemp("damaged")
    data = write_sentiment_csv(root / "train.csv")
    recipes = {
        "full": write_recipe(root / "full", tiny_models["bert"], data),
        "lora": write_recipe(root / "lora", tiny_models["bert"], data, method={"name": "lora", "r": 4}),
        "qa": write_qa_recipe(root / "qa", tiny_models["bert"], {"name": "full"}, max_length=64, stride=16),
    }
    for kind, recipe in recipes.items():
        result = invoke("run", recipe, "-o", "train.max_steps=2")
        assert result.exit_code == 0, f"{kind}: {result.output}"
    return {kind: recipe.parent / "run" for kind, recipe in recipes.items()}


def copy_of(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def cut_short(path: Path, keep: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def refused(result: Any, *fragments: str) -> str:
    """user_error, and the whole output (stdout and stderr) is that one line."""
    line = user_error(result, *fragments)
    assert [x for x in (result.stdout + result.stderr).splitlines() if x.strip()] == [line]
    return line


def nothing_new(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before, "something was written"


# ---- 1. damaged model files: cut short, deleted, not JSON --------------------------------------------------------


@pytest.mark.parametrize("kind", ["full", "lora", "qa"])
def test_weights_cut_short_are_named_with_the_fix(runs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    run = copy_of(runs[kind], tmp_path)
    cut_short(run / WEIGHTS[kind])
    out = tmp_path / "predictions.jsonl"
    refused(
        invoke("predict", run, *PREDICT_ARGS[kind], "--out", out),
        f"{run / WEIGHTS[kind]} is cut short or corrupt",
        "the run folder is damaged: train it again",
    )
    assert not out.exists()
    refused(invoke("evaluate", run, "--data", "squad_mini/dev.json"), f"{run / WEIGHTS[kind]} is cut short")


@pytest.mark.parametrize("kind", ["full", "lora", "qa"])
def test_deleted_weights_and_a_config_that_is_not_json(runs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    missing = copy_of(runs[kind], tmp_path, "missing")
    (missing / WEIGHTS[kind]).unlink()
    refused(invoke("predict", missing, *PREDICT_ARGS[kind]), f"{missing / WEIGHTS[kind]} is missing", "train it again")

    garbled = copy_of(runs[kind], tmp_path, "garbled")
    (garbled / CONFIG[kind]).write_text('{"model_type": "bert",', encoding="utf-8")
    refused(invoke("predict", garbled, *PREDICT_ARGS[kind]), f"{garbled / CONFIG[kind]} is not valid JSON")


HEAD = {"full": "classifier.", "lora": "classifier.", "qa": "qa_outputs."}  # the head's weight names start so


def rewrite_weights(path: Path, change: Any) -> list[str]:
    """Rewrite a safetensors file through `change` (name -> tensor, changed in place); its names before."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    before = sorted(tensors)
    change(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})
    return before


@pytest.mark.parametrize("kind", ["full", "lora", "qa"])
def test_a_folder_without_its_head_weights_is_refused_naming_them(
    runs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    """A whole, readable weights file that lacks the head: the model would load with a random head and answer
    confidently. predict and evaluate refuse in one line naming the missing weights."""
    run = copy_of(runs[kind], tmp_path)
    names = rewrite_weights(run / WEIGHTS[kind], lambda t: [t.pop(n) for n in list(t) if HEAD[kind] in n])
    head = [n for n in names if HEAD[kind] in n]
    assert head
    out = tmp_path / "predictions.jsonl"
    line = refused(invoke("predict", run, *PREDICT_ARGS[kind], "--out", out), "missing weights", "train it again")
    assert all(n.rsplit(".", 2)[-2] in line for n in head), line  # e.g. classifier.weight ... named
    assert not out.exists()
    data = "squad_mini/dev.json" if kind == "qa" else str(write_sentiment_csv(tmp_path / "eval.csv"))
    refused(invoke("evaluate", run, "--data", data), "missing weights")


def test_renamed_weights_are_refused_naming_the_missing_and_the_unexpected(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = copy_of(runs["full"], tmp_path)
    renamed = "bert.encoder.layer.0.output.dense.weight"
    rewrite_weights(run / WEIGHTS["full"], lambda t: t.update({"renamed.dense.weight": t.pop(renamed)}))
    line = refused(invoke("predict", run, "great movie"), f"missing weights {renamed}")
    assert "unexpected weights renamed.dense.weight" in line


def test_export_merge_of_a_damaged_adapter_writes_nothing(runs: dict[str, Path], tmp_path: Path) -> None:
    run = copy_of(runs["lora"], tmp_path)
    cut_short(run / "adapter_model.safetensors", keep=500)
    before = {p.name for p in tmp_path.iterdir()}
    refused(
        invoke("export", run, "--merge", "--output-dir", tmp_path / "shipped"),
        f"{run / 'adapter_model.safetensors'} is cut short",
        "train it again",
    )
    nothing_new(tmp_path, before)  # no export folder, no staging folder beside it


def test_a_damaged_export_says_export_again_and_a_damaged_base_model_says_download_again(
    runs: dict[str, Path], tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    exported = tmp_path / "shipped"
    assert invoke("export", runs["full"], "--output-dir", exported).exit_code == 0
    assert (exported / TOKENIZER_RECORD).is_file()  # the record travels with the model
    cut_short(exported / "model.safetensors")
    refused(invoke("predict", exported, "great"), "is cut short", "the export is damaged: export the run again")

    base = tmp_path / "base-model"
    shutil.copytree(tiny_models["bert"], base)
    cut_short(base / "model.safetensors", keep=3000)
    recipe = write_recipe(tmp_path / "again", base, write_sentiment_csv(tmp_path / "data.csv"))
    refused(
        invoke("run", recipe),
        f"model '{base}': {base / 'model.safetensors'} is cut short",
        "download the model again",
    )
    assert not (tmp_path / "again" / "run").exists()

    adapter = copy_of(runs["lora"], tmp_path, "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(base)  # the adapter's base model, damaged
    (adapter / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    refused(invoke("predict", adapter, "great"), "this adapter's base model", f"{base / 'model.safetensors'}")


# ---- 2. the tokenizer the model was trained with -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["full", "lora", "qa"])
def test_a_run_folder_records_its_tokenizer_and_refuses_another(
    runs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    record = json.loads((runs[kind] / TOKENIZER_RECORD).read_text(encoding="utf-8"))
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(record["files"])

    deleted = copy_of(runs[kind], tmp_path, "deleted")
    (deleted / "tokenizer.json").unlink()
    (deleted / "tokenizer_config.json").unlink()
    # Without the check, transformers builds an empty tokenizer: every word [UNK], a confident meaningless label.
    refused(invoke("predict", deleted, *PREDICT_ARGS[kind]), f"{deleted / 'tokenizer.json'}", "is missing")

    changed = copy_of(runs[kind], tmp_path, "changed")
    config = json.loads((changed / "tokenizer_config.json").read_text(encoding="utf-8"))
    (changed / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}), encoding="utf-8")
    refused(
        invoke("export", changed, "--output-dir", tmp_path / "out"),
        f"{changed / 'tokenizer_config.json'} differs from the tokenizer the model was trained with",
    )
    assert not (tmp_path / "out").exists()


def test_a_folder_without_the_record_still_needs_its_tokenizer(runs: dict[str, Path], tmp_path: Path) -> None:
    """Folders written before the record existed load as before, unless their tokenizer is gone."""
    older = copy_of(runs["full"], tmp_path)
    (older / TOKENIZER_RECORD).unlink()
    assert invoke("predict", older, "great movie").exit_code == 0
    (older / "tokenizer.json").unlink()
    refused(invoke("predict", older, "great movie"), "has no tokenizer (no tokenizer.json)")


def test_training_refuses_a_model_folder_whose_tokenizer_files_are_gone(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    base = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_models["bert"], base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (base / name).unlink()
    recipe = write_recipe(tmp_path, base, write_sentiment_csv(tmp_path / "data.csv"))
    refused(invoke("run", recipe), "has no vocabulary", "tokenizer files", "model.tokenizer")
    assert not (tmp_path / "run").exists()


# ---- 3. output paths, checked before anything loads --------------------------------------------------------------


def test_output_paths_are_checked_before_the_model_loads(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nlp_transfer.use.evaluate
    import nlp_transfer.use.export
    import nlp_transfer.use.predict

    def no_loading(*args: object) -> None:
        raise AssertionError("the model was opened before the output path was checked")

    for module in (nlp_transfer.use.predict, nlp_transfer.use.evaluate, nlp_transfer.use.export):
        monkeypatch.setattr(module, "open_trained", no_loading)
    a_file = tmp_path / "a-file"
    a_file.write_text("in the way", encoding="utf-8")
    run = runs["full"]
    cases = [
        (("predict", run, "great", "--out", a_file / "p.jsonl"), f"--out {a_file / 'p.jsonl'} cannot be written"),
        (("predict", run, "great", "--out", tmp_path), "is a folder; name a file"),
        (("evaluate", run, "--data", "x.csv", "--out", a_file / "m.json"), f"{a_file} is a file, not a folder"),
        (("export", run, "--output-dir", a_file / "shipped"), f"--output-dir {a_file / 'shipped'} cannot be written"),
        (("export", run, "--output-dir", a_file), "is a file, not a folder"),
        (
            ("export", run, "--output-dir", Path("/proc/nlp-transfer-test/shipped")),
            "cannot be written",
        ),  # even for root
    ]
    for args, fragment in cases:
        refused(invoke(*args), fragment, "choose another --out" if "folder;" not in fragment else "")
    assert a_file.read_text(encoding="utf-8") == "in the way"


def test_missing_output_folders_are_made_and_said(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "new" / "folder" / "predictions.jsonl"
    result = invoke("predict", runs["full"], "great movie", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"(created folder {tmp_path / 'new' / 'folder'})" in result.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == "great movie"


# ---- 6. run folders missing their records ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "not-json"])
def test_resume_and_reproduce_without_environment_json(runs: dict[str, Path], tmp_path: Path, damage: str) -> None:
    run = copy_of(runs["full"], tmp_path)
    environment = run / "environment.json"
    if damage == "missing":
        environment.unlink()
    else:
        environment.write_text("{'seed': 0", encoding="utf-8")
    problem = "is missing" if damage == "missing" else "is not valid JSON"
    refused(invoke("run", run, "--reproduce"), f"--reproduce: {environment} {problem}", "train its recipe again")
    status = json.loads((run / "run_status.json").read_text(encoding="utf-8"))
    (run / "run_status.json").write_text(json.dumps({**status, "state": "interrupted"}), encoding="utf-8")
    refused(invoke("run", run, "--resume"), f"--resume: {environment} {problem}", "resume with the recipe file")
    assert not [p for p in tmp_path.iterdir() if p.name != "copy"], "no reproduced folder was made"


def test_run_missing_dir_with_resume_talks_about_run_folders(tmp_path: Path) -> None:
    refused(invoke("run", tmp_path / "runs" / "gone", "--resume"), "no such run folder or recipe file")
    refused(invoke("run", tmp_path / "runs" / "gone", "--reproduce"), "no such run folder or recipe file")


# ---- 7. push --dry-run of a folder without weights ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_push_dry_run_refuses_a_folder_without_weights(runs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    run = copy_of(runs[kind], tmp_path)
    (run / WEIGHTS[kind]).unlink()
    refused(invoke("push", run, "--repo-id", "alice/tiny", "--dry-run"), f"{run / WEIGHTS[kind]} is missing")


# ---- 8. messages about the files given to predict and evaluate ---------------------------------------------------


def test_predict_file_that_is_a_folder_or_empty(runs: dict[str, Path], tmp_path: Path) -> None:
    refused(invoke("predict", runs["full"], "--file", tmp_path), f"--file {tmp_path}: is a folder")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    refused(invoke("predict", runs["full"], "--file", empty), f"--file {empty} has no rows")


def test_evaluate_names_its_own_options(runs: dict[str, Path], tmp_path: Path) -> None:
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"text": "great", "label": "positive"}\n', encoding="utf-8")
    line = refused(
        invoke("evaluate", runs["full"], "--data", jsonl, "--columns", "text,label"),
        "--columns names csv/tsv header columns",
        "remove --columns",
    )
    assert "data.columns" not in line


def test_evaluating_a_qa_model_on_a_classification_file_says_what_it_needs(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    data = write_sentiment_csv(tmp_path / "sentiment.csv")
    line = refused(
        invoke("evaluate", runs["qa"], "--data", data),
        "no column 'question', 'context', 'answers'",
        "answers questions",
        "the file's columns are text, label",
        "Pass a question-answering file",
    )
    assert "(the model's" not in line


def test_a_recipe_with_the_same_label_twice_is_refused(tmp_path: Path, sentiment_csv: Path) -> None:
    recipe = write_recipe(tmp_path, "unused-model", sentiment_csv, task={"labels": ["positive", "positive"]})
    refused(invoke("validate", recipe), "task.labels names 'positive' more than once")
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw["task"]["labels"] = ["positive"]
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    refused(invoke("validate", recipe), "names one class; a classifier needs at least two")


def test_later_commands_check_their_output_paths_first(tmp_path: Path) -> None:
    """tune --output-dir, report --output-dir and init --out below a regular file: one line naming the option,
    before any data, run or study is read."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n", encoding="utf-8")
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "sst2_minilm_lora_tune.yaml"
    refused(invoke("tune", recipe, "--output-dir", blocker / "tune"), "--output-dir", "is a file, not a folder")
    refused(invoke("report", tmp_path, tmp_path, "--output-dir", blocker / "r"), "--output-dir", "is a file")
    data = tmp_path / "d.csv"
    data.write_text("text,label\nfine,pos\nbad,neg\n", encoding="utf-8")
    refused(invoke("init", data, "--out", blocker / "recipe.yaml"), "--out", "is a file, not a folder")
