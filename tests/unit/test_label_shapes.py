"""Multi-label and regression end to end on tiny models: training with every method, thresholds tuned on the eval
split and applied by predict and evaluate, the regression scale stored in the config and undone, the card, export
(ONNX) and compare. Long texts (windows) and class weights are in test_long_texts.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.tasks.thresholds import GRID
from nlp_transfer.use.predict import open_predictor
from tests.conftest import invoke, user_error, write_recipe
from tests.unit.labels_data import CUES, write_emotions

NAMES = list(CUES)


def ok(*args: object) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def task_recipe(
    folder: Path, model: Path, train: Path, evaluation: Path, task: dict[str, Any], **sections: Any
) -> Path:
    return write_recipe(
        folder,
        model,
        train,
        task={"text": "text", "max_length": 32, **task},
        data={"eval": str(evaluation)},
        train={"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "logging_steps": 5, "seed": 0, "precision": "fp32"},
        **sections,
    )


@pytest.fixture(scope="module")
def emotions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_emotions(tmp_path_factory.mktemp("emotions"))


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], emotions: Any) -> Path:
    folder = tmp_path_factory.mktemp("multi-label")
    ok("run", task_recipe(folder, tiny_models["bert"], *emotions, {"name": "multi_label", "label": "labels"}))
    return folder / "run"


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path], emotions: Any) -> Path:
    folder = tmp_path_factory.mktemp("regression")
    ok("run", task_recipe(folder, tiny_models["bert"], *emotions, {"name": "regression", "label": ["score", "calm"]}))
    return folder / "run"


def metrics(run: Path, split: str = "eval") -> dict[str, float]:
    found = json.loads((run / "metrics.json").read_text(encoding="utf-8"))[split]
    return {k.removeprefix(f"{split}_"): v for k, v in found.items() if not k.endswith(("runtime", "per_second"))}


def test_multi_label_learns_tunes_thresholds_and_predict_applies_them(multi_label_run: Path, emotions: Any) -> None:
    run = multi_label_run
    found = metrics(run)
    for key in ("macro_f1", "micro_f1", "subset_accuracy", "macro_roc_auc", "macro_f1_fixed", "loss"):
        assert key in found
    for name in NAMES:
        assert {f"precision_{name}", f"recall_{name}", f"f1_{name}", f"support_{name}"} <= set(found)
    assert found["macro_roc_auc"] > 0.75, found  # the cue words decide the labels: the model has learned them
    assert sum(found[f"support_{n}"] for n in NAMES) == sum(len(json.loads(r)["labels"]) for r in emotions[1].open())

    record = json.loads((run / "thresholds.json").read_text(encoding="utf-8"))
    assert record["strategy"] == "per_label" and record["tuned_on"] == "eval"
    assert set(record["thresholds"]) == set(NAMES)
    assert all(round(t, 2) in np.round(GRID, 2) for t in record["thresholds"].values())
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["problem_type"] == "multi_label_classification" and len(config["id2label"]) == 3

    rows = [json.loads(line) for line in ok("predict", run, "happy and furious", "the day went on").stdout.splitlines()]
    for row in rows:
        assert set(row["probabilities"]) == set(NAMES)
        chosen = {n for n, p in row["probabilities"].items() if p >= record["thresholds"][n]}
        assert set(row["labels"]) == chosen  # exactly the labels at or above their thresholds
    assert "joy" in rows[0]["labels"] and "anger" in rows[0]["labels"]

    # evaluate on the run's own eval file, with the saved thresholds: the run's eval metrics again
    evaluated = json.loads(ok("evaluate", run, "--data", emotions[1], "--precision", "fp32").stdout)["metrics"]
    for key in ("macro_f1", "micro_f1", "subset_accuracy", *[f"f1_{n}" for n in NAMES]):
        assert evaluated[key] == pytest.approx(found[key], abs=1e-9), key
    assert evaluated["loss"] == pytest.approx(found["loss"], abs=1e-4)

    card = (run / "README.md").read_text(encoding="utf-8")
    assert "## Labels and decision thresholds" in card and "Multi-label classification" in card
    assert "type: macro_f1" in card  # model-index


def test_regression_stores_its_scale_and_predicts_in_the_targets_units(regression_run: Path, emotions: Any) -> None:
    run = regression_run
    train = [json.loads(line) for line in emotions[0].open()]
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "score", "1": "calm"}
    for index, target in enumerate(("score", "calm")):
        values = np.array([row[target] for row in train])
        assert config["target_mean"][index] == pytest.approx(values.mean())
        assert config["target_std"][index] == pytest.approx(values.std())
    found = metrics(run)
    for key in ("pearson", "spearman", "r2", "mse", "mae", "pearson_score", "mae_calm"):
        assert key in found
    assert found["pearson_calm"] > 0.4 and found["pearson_score"] > 0.4, found  # the cue words set the targets

    predictor: Any = open_predictor(run, runtime=Runtime.choose("cpu", "fp32"))  # the precision it trained in
    texts = ["furious and scared 1", "happy 2"]
    raw = torch.cat(list(predictor.text_model.outputs(texts))).numpy()
    expected = raw * np.array(config["target_std"]) + np.array(config["target_mean"])
    rows = [json.loads(line) for line in ok("predict", run, *texts, "--precision", "fp32").stdout.splitlines()]
    for row, values in zip(rows, expected, strict=True):
        assert [row["values"]["score"], row["values"]["calm"]] == pytest.approx(values.tolist(), abs=1e-4)
    assert rows[0]["values"]["calm"] < rows[1]["values"]["calm"]  # anger lowers calm

    evaluated = json.loads(ok("evaluate", run, "--data", emotions[1], "--precision", "fp32").stdout)["metrics"]
    for key in ("pearson", "mse", "mae_score", "r2_calm"):
        assert evaluated[key] == pytest.approx(found[key], abs=1e-6), key
    assert "## Targets" in (run / "README.md").read_text(encoding="utf-8")


METHOD_CASES = [
    ("multi_label", {"name": "full"}),
    ("multi_label", {"name": "probe", "learning_rate": 1e-2}),
    ("multi_label", {"name": "unfreeze_last", "layers": 1}),
    ("multi_label", {"name": "lora", "r": 4}),
    ("multi_label", {"name": "probe_then_finetune", "probe_epochs": 1}),
    ("multi_label", {"name": "scratch"}),
    ("regression", {"name": "probe", "pooling": "mean", "learning_rate": 1e-2}),
    ("regression", {"name": "unfreeze_last", "layers": 1}),
    ("regression", {"name": "lora", "r": 4}),
    ("regression", {"name": "probe_then_finetune", "probe_epochs": 1}),
    ("regression", {"name": "scratch"}),
]


@pytest.mark.parametrize(("task", "method"), METHOD_CASES, ids=[f"{t}-{m['name']}" for t, m in METHOD_CASES])
def test_every_method_trains_saves_and_reloads_both_tasks(
    task: str, method: dict[str, Any], tmp_path: Path, tiny_models: dict[str, Path], emotions: Any
) -> None:
    """Each method's saved model (plain folder, probe folder, adapter) is read back by evaluate with the run's own
    metrics: what trained is what predict and evaluate load."""
    label: Any = "labels" if task == "multi_label" else ["score", "calm"]
    recipe = task_recipe(tmp_path, tiny_models["bert"], *emotions, {"name": task, "label": label}, method=method)
    ok("run", recipe, "-o", "train.epochs=1")
    run = tmp_path / "run"
    main = "macro_f1" if task == "multi_label" else "pearson"
    evaluated = json.loads(ok("evaluate", run, "--data", emotions[1], "--precision", "fp32").stdout)["metrics"]
    assert evaluated[main] == pytest.approx(metrics(run)[main], abs=1e-5)
    if method["name"] == "probe":  # the head trained on cached features, whose labels kept their float shape
        assert metrics(run)["loss"] == pytest.approx(evaluated["loss"], abs=1e-4)


def test_label_formats_a_list_ids_with_a_names_file_and_0_1_columns_give_the_same_labels(
    tmp_path: Path, emotions: Any
) -> None:
    from nlp_transfer.data.loading import load_extra_split
    from nlp_transfer.recipe import MultiLabelTask
    from nlp_transfer.tasks.label_names import read_label_names
    from nlp_transfer.tasks.multi_label import LabelReader

    rows = load_extra_split(str(emotions[0]), split="train", field="t", data_root=None, base_dir=None).splits["train"]
    names_file = tmp_path / "names.txt"
    names_file.write_text("0\tjoy\n1\tanger\n2\tfear\n", encoding="utf-8")
    names = read_label_names(names_file, "task.labels_file")
    readings = {
        "list": LabelReader(MultiLabelTask(name="multi_label", label="labels", labels=NAMES), NAMES),
        "ids": LabelReader(MultiLabelTask(name="multi_label", label="ids", labels_file=str(names_file)), names),
        "columns": LabelReader(MultiLabelTask(name="multi_label", label=NAMES), None),
    }
    matrices = {how: reader.matrix(rows, "t") for how, reader in readings.items()}
    assert matrices["list"].shape == (96, 3) and matrices["list"].dtype == np.float32
    assert (matrices["list"] == matrices["ids"]).all() and (matrices["list"] == matrices["columns"]).all()
    assert matrices["list"].sum(axis=1).min() >= 1


def test_onnx_export_of_a_regression_model_gives_its_outputs(regression_run: Path, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "export"
    ok("export", regression_run, "--onnx", "--out", out)
    assert (out / "thresholds.json").exists() is False and (out / "config.json").is_file()
    predictor: Any = open_predictor(out, runtime=Runtime.choose("cpu", "fp32"))  # ONNX runs in fp32
    inputs = predictor.text_model.tokenizer(["happy 1", "furious and scared 22"], padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    (found,) = session.run(["logits"], {n: inputs[n].astype(np.int64) for n in names})
    expected = torch.cat(list(predictor.text_model.outputs(["happy 1", "furious and scared 22"]))).numpy()
    assert np.abs(found - expected).max() < 1e-4
    assert "output x std + mean" in (out / "README.md").read_text(encoding="utf-8")


def test_onnx_export_of_a_multi_label_model_gives_its_logits_and_thresholds(
    multi_label_run: Path, tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "export"
    ok("export", multi_label_run, "--onnx", "--out", out)
    thresholds = json.loads((out / "thresholds.json").read_text(encoding="utf-8"))
    assert thresholds == json.loads((multi_label_run / "thresholds.json").read_text(encoding="utf-8"))
    texts = ["glad 3", "furious and scared 22"]
    predictor: Any = open_predictor(out, runtime=Runtime.choose("cpu", "fp32"))
    inputs = predictor.text_model.tokenizer(texts, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (found,) = session.run(["logits"], {i.name: inputs[i.name].astype(np.int64) for i in session.get_inputs()})
    expected = torch.cat(list(predictor.text_model.outputs(texts))).numpy()
    assert found.shape == (2, len(NAMES)) and np.abs(found - expected).max() < 1e-4
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "threshold" in card.lower()


def test_a_multi_label_export_carries_its_thresholds_and_compare_grids_it(
    multi_label_run: Path, tmp_path: Path, tiny_models: dict[str, Path], emotions: Any
) -> None:
    out = tmp_path / "export"
    ok("export", multi_label_run, "--out", out)
    assert json.loads((out / "thresholds.json").read_text()) == json.loads(
        (multi_label_run / "thresholds.json").read_text()
    )
    assert ok("predict", out, "glad 3").stdout == ok("predict", multi_label_run, "glad 3").stdout
    plan = ok("push", multi_label_run, "--repo-id", "alice/emotions", "--dry-run").stdout
    assert "thresholds.json" in plan

    recipe = task_recipe(tmp_path / "cmp", tiny_models["bert"], *emotions, {"name": "multi_label", "label": "labels"})
    ok("compare", recipe, "--methods", "probe,full", "--output-dir", tmp_path / "compare", "-o", "train.epochs=1")
    report = (tmp_path / "compare" / "compare.md").read_text(encoding="utf-8")
    assert "eval macro_f1" in report and "| probe |" in report and "| full |" in report


def test_lower_is_better_metrics_pick_the_lowest_checkpoint(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.arguments import training_arguments

    recipe = write_recipe(tmp_path, tiny_models["bert"], "x.csv", task={"name": "regression", "label": "y"})
    for metric, greater in (("mae", False), ("mse", False), ("pearson", True), ("loss", False)):
        loaded = load_recipe(recipe, [f"train.metric_for_best={metric}"])
        assert training_arguments(loaded.recipe.train, tmp_path).greater_is_better is greater
    resolved = yaml.safe_load(ok("show", recipe).stdout)
    assert resolved["train"]["metric_for_best"] == "pearson"


@pytest.mark.subprocess
def test_a_killed_multi_label_run_resumes_to_the_same_metrics_and_thresholds(
    tmp_path: Path, tiny_models: dict[str, Path], emotions: Any
) -> None:
    import signal

    from tests.unit.test_reliability import start_and_stop

    task = {"name": "multi_label", "label": "labels"}
    steps = {"train": {"max_steps": 40, "checkpoint_steps": 5, "epochs": 4, "batch_size": 8, "learning_rate": 2e-3}}
    whole = task_recipe(tmp_path / "whole", tiny_models["bert"], *emotions, task)
    cut = task_recipe(tmp_path / "cut", tiny_models["bert"], *emotions, task)
    for recipe in (whole, cut):
        document = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        document["train"] |= steps["train"]
        recipe.write_text(yaml.safe_dump(document), encoding="utf-8")
    ok("run", whole)
    stopped = start_and_stop(cut, "train", signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    ok("run", cut, "--resume")
    assert metrics(tmp_path / "cut" / "run") == metrics(tmp_path / "whole" / "run")
    thresholds = [json.loads((tmp_path / d / "run" / "thresholds.json").read_text()) for d in ("whole", "cut")]
    assert thresholds[0] == thresholds[1]


def test_thresholds_are_tuned_per_label_or_globally_and_settled_for_the_test_split() -> None:
    from nlp_transfer.tasks.thresholds import Decisions, tune

    rng = np.random.default_rng(0)
    gold = np.zeros((400, 3), dtype=int)
    gold[:200, 0] = 1  # label 0: common, its positives score above 0.6
    gold[:20, 1] = 1  # label 1: rare, its positives score around 0.2 (a fixed 0.5 never predicts it)
    probabilities = rng.uniform(0.0, 0.5, (400, 3))
    probabilities[:200, 0] = rng.uniform(0.6, 1.0, 200)
    probabilities[:20, 1] = rng.uniform(0.15, 0.25, 20)
    probabilities[20:, 1] = rng.uniform(0.0, 0.1, 380)
    per_label = tune(probabilities, gold, "per_label", 0.5)
    assert 0.5 <= per_label[0] <= 0.6 and 0.1 <= per_label[1] <= 0.15 and per_label[2] == 0.5  # 2: no positives
    assert len(set(tune(probabilities, gold, "global", 0.5))) == 1
    assert (tune(probabilities, gold, "fixed", 0.3) == 0.3).all()

    decisions = Decisions(["a", "b", "c"], "per_label", 0.5)
    assert (decisions.thresholds(probabilities, gold) == per_label).all()
    record = decisions.settle()
    assert record["thresholds"]["b"] == pytest.approx(per_label[1])
    shuffled = rng.permutation(gold)  # after settling, another split never re-tunes them
    assert (decisions.thresholds(probabilities, shuffled) == per_label).all()


def test_multi_label_and_regression_runs_draw_their_own_views(multi_label_run: Path, regression_run: Path) -> None:
    """Per-label F1 bars for multi-label, predicted-vs-true scatters per target for regression: drawn with the run,
    listed in metrics.json and embedded in report.html."""
    for run, files in (
        (multi_label_run, ["label_f1.png"]),
        (regression_run, ["scatter_score.png", "scatter_calm.png"]),
    ):
        drawn = [f["file"] for f in json.loads((run / "metrics.json").read_text(encoding="utf-8"))["report"]["figures"]]
        assert drawn == ["curves.png", *files]
        for name in files:
            assert (run / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        report = (run / "report.html").read_text(encoding="utf-8")
        assert report.count("data:image/png;base64,") == 1 + len(files)


def test_options_that_cannot_apply_are_refused_not_ignored(regression_run: Path, emotions: Any) -> None:
    """A model of two targets cannot take one --label; a single-text model has no second text; --columns and
    --delimiter describe a --file that predict was not given."""
    _, evaluation = emotions
    user_error(
        invoke("evaluate", regression_run, "--data", evaluation, "--label", "score"),
        "evaluate --label",
        "2 label columns (score, calm)",
    )
    user_error(
        invoke("evaluate", regression_run, "--data", evaluation, "--text-pair", "labels"),
        "evaluate --text-pair",
        "reads single texts",
    )
    for option, value in (("--columns", "text,label"), ("--delimiter", ";")):
        user_error(invoke("predict", regression_run, "a happy day", option, value), f"predict {option}", "--file")
    ok("evaluate", regression_run, "--data", evaluation)  # the model's own columns still evaluate
