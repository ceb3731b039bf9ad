"""What a run shows: figures and report.html in every run folder (embedded in its card), the training log read back
in words (the kept checkpoint, over-fitting, the majority-class baseline), trackers writing under the run folder,
and output that fits on a screen."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import invoke, write_recipe

PNG = b"\x89PNG\r\n\x1a\n"


def ok(*args: object) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return str(result.stdout)


def _no_network_and_every_image_inline(report: str) -> None:
    images = re.findall(r"<img [^>]*src='([^']*)'", report)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", report.replace("data:image/png;base64,", "")), "external URL"
    assert "<script" not in report and "<link" not in report


def test_a_classification_run_writes_its_figures_report_and_card(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 2})
    output = ok("run", recipe)
    run = tmp_path / "run"
    for name in ("curves.png", "confusion.png", "calibration.png"):
        assert (run / name).read_bytes().startswith(PNG), name
    report = (run / "report.html").read_text(encoding="utf-8")
    _no_network_and_every_image_inline(report)
    assert report.count("<img ") == 3 and "Recipe" in report and "eval" in report
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert [f["file"] for f in metrics["report"]["figures"]] == ["curves.png", "confusion.png", "calibration.png"]
    assert 0 <= metrics["report"]["numbers"]["expected_calibration_error"] <= 1
    errors = [json.loads(line) for line in (run / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(errors) == metrics["report"]["numbers"]["eval_errors"] or len(errors) == 50
    probabilities = [row["probability"] for row in errors]
    assert probabilities == sorted(probabilities, reverse=True)  # the most confident mistakes first
    assert all(row["label"] != row["predicted"] and row["text"] for row in errors)
    card = (run / "README.md").read_text(encoding="utf-8")
    for name in ("curves.png", "confusion.png", "calibration.png"):
        assert f"]({name})" in card  # the card shows the figures the folder holds
    assert "## Training report" in card and "kept the" in card
    # The summary: the main metrics, the per-class table, the kept checkpoint, where the report is.
    assert "Per class (" in output and "report:" in output and "kept the checkpoint of step" in output
    assert "samples_per_second" not in output and "runtime" not in output  # those stay in metrics.json


def test_a_qa_run_reports_scores_by_answer_length(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    recipe = tmp_path / "qa.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model": {"name": str(tiny_models["bert"])},
                "task": {"name": "qa", "max_length": 96, "stride": 24},
                "data": {"train": "squad_mini/train.json", "eval": "squad_mini/dev.json", "max_train_samples": 24},
                "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3},
                "output": {"dir": str(tmp_path / "run")},
            }
        ),
        encoding="utf-8",
    )
    output = ok("run", recipe, "-o", "data.max_eval_samples=30")
    run = tmp_path / "run"
    assert (run / "answer_length.png").read_bytes().startswith(PNG)
    numbers = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["report"]["numbers"]
    assert sum(int(key.split("(")[1].rstrip(")")) for key in numbers["f1_by_answer_length"]) == 30
    _no_network_and_every_image_inline((run / "report.html").read_text(encoding="utf-8"))
    predict = next(line for line in output.splitlines() if line.startswith("predict:"))
    assert "--question" in predict and "--context" in predict  # an example from the run's own eval questions


def test_a_run_built_to_overfit_says_so(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Random labels on 48 training texts: the model can only memorise them. Training loss falls, eval loss rises,
    and the summary, metrics.json and the card say it, with the checkpoint that was kept."""
    import random

    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta", "lambda", "zeta"]
    rows = ["text,label"] + [f"{' '.join(rng.choices(words, k=6))} {i},{rng.choice(['a', 'b'])}" for i in range(80)]
    data = tmp_path / "noise.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], data, train={"epochs": 12, "learning_rate": 3e-3, "batch_size": 8}
    )
    output = ok("run", recipe, "-o", "data.eval_fraction=0.4")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    found = metrics["diagnostics"]
    assert "overfitting" in found, found
    assert "over-fitting: eval loss rose" in output
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert "over-fitting" in card and found["kept"]["message"] in card
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    assert found["kept"]["step"] < max(e["step"] for e in history if "eval_loss" in e)  # an earlier checkpoint


def test_the_best_constant_answer_is_the_baseline_a_model_must_beat(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    # One step at a tiny learning rate: the model cannot have learned; it is told.
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"max_steps": 1, "learning_rate": 1e-7})
    output = ok("run", recipe)
    baseline = json.loads((tmp_path / "run" / "metrics.json").read_text())["diagnostics"]["baseline"]
    assert "best constant answer on the eval split" in baseline["name"] and 0 < baseline["accuracy"] < 1
    if "no better than" in output:
        assert "has not learned the task" in output


def test_tensorboard_and_mlflow_write_under_the_run_folder(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trackers = ["tensorboard"] + (["mlflow"] if _installed("mlflow") else [])
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 1, "report_to": trackers})
    ok("run", recipe)
    run = tmp_path / "run"
    events = list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]
    if "mlflow" in trackers:
        assert any((run / "mlruns").rglob("*")), "mlflow wrote nothing under the run folder"
    assert "tensorboard" not in json.loads((run / "metrics.json").read_text())  # a record, not a model file
    from nlp_transfer.use.trained import shared_files

    assert not [p for p in shared_files(run) if "tensorboard" in p.parts or "mlruns" in p.parts]


def test_weights_and_biases_offline_writes_under_the_run_folder(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W&B without an account or a network (WANDB_MODE=offline, as `wandb sync` later uploads): its run files land
    in the run folder's wandb/, which is never pushed."""
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 1, "report_to": ["wandb"]})
    ok("run", recipe)
    run = tmp_path / "run"
    offline_runs = list((run / "wandb").glob("offline-run-*"))
    assert offline_runs and list(offline_runs[0].glob("*.wandb")), "W&B wrote no offline run under the run folder"
    from nlp_transfer.use.trained import shared_files

    assert not [p for p in shared_files(run) if "wandb" in p.parts]


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_unknown_tracker_is_one_line(tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path) -> None:
    from tests.conftest import user_error

    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"report_to": "tensorbord"})
    user_error(invoke("validate", recipe), "train.report_to", "did you mean 'tensorboard'")
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"trainer": {"report_to": "wandb"}})
    user_error(invoke("validate", recipe), "train.trainer.report_to", "train.report_to")


def test_logging_steps_scale_with_the_run(tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 3, "logging_steps": None})
    ok("run", recipe)
    logged = [json.loads(line) for line in (tmp_path / "run" / "trainer_log.jsonl").read_text().splitlines()]
    losses = [row for row in logged if "loss" in row]
    assert 15 <= len(losses) <= 40, len(losses)  # 33 steps: logged about every step, not once per 50


def test_report_rebuilds_a_run_and_overlays_several(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    first = write_recipe(tmp_path / "a", tiny_models["bert"], sentiment_csv, train={"epochs": 1})
    second = write_recipe(tmp_path / "b", tiny_models["bert"], sentiment_csv, method={"name": "probe"})
    ok("run", first)
    ok("run", second)
    (tmp_path / "a" / "run" / "report.html").unlink()
    ok("report", tmp_path / "a" / "run")
    _no_network_and_every_image_inline((tmp_path / "a" / "run" / "report.html").read_text(encoding="utf-8"))
    output = ok("report", tmp_path / "a" / "run", tmp_path / "b" / "run", "--output-dir", tmp_path / "both")
    joint = (tmp_path / "both" / "report.html").read_text(encoding="utf-8")
    _no_network_and_every_image_inline(joint)
    assert "run" in output and joint.count("<tr><td>run</td>") == 2
    from tests.conftest import user_error

    user_error(invoke("report", tmp_path / "nothing"), "not a finished nlp-transfer run folder")


@pytest.mark.subprocess
@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_successful_run_fits_on_one_screen(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, method: str
) -> None:
    """No library noise either: peft under transformers 5 warns on every LoRA model it wraps (held for run.log),
    and asks the Hub about the base model when it saves an adapter (offline: a warning)."""
    train = {"epochs": 3, "logging_steps": 1}
    card = {"base_model": "google-bert/bert-base-uncased"}  # the adapter names its Hub base model
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, method={"name": method}, train=train, card=card)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "nlp_transfer", "run", str(recipe)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    noise = ("{'loss'", "LOAD REPORT", "Writing model", "Warning", "warnings.warn")
    assert not [line for line in lines if any(marker in line for marker in noise)]
    assert all(len(line) <= 200 for line in lines if not line.startswith(("run folder:", "report:", "predict:")))


def test_cards_state_what_the_run_used(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """The LoRA card gives the method's learning rate and the modules it adapted; a full run's card has no empty
    settings; the usage example is a text of the run's own eval data."""
    source = Path(os.environ["NLP_TRANSFER_DATA"]) / "amazon_mds" / "kitchen" / "test.jsonl"
    kitchen = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()[:60]]
    data = tmp_path / "kitchen.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in kitchen), "utf-8")
    lora = write_recipe(
        tmp_path / "lora",
        tiny_models["bert"],
        data,
        method={"name": "lora", "learning_rate": 0.0015, "target_modules": ["dense"]},
        train={"max_steps": 2, "learning_rate": 5e-5},
    )
    ok("run", lora)
    card = (tmp_path / "lora" / "run" / "README.md").read_text(encoding="utf-8")
    assert "learning rate: 0.0015" in card and "learning rate: 5e-05" not in card
    assert "adapted modules: dense" in card and "attention" not in card.split("## Training\n")[1].split("##")[0]
    full = write_recipe(tmp_path / "full", tiny_models["bert"], data, train={"max_steps": 2})
    ok("run", full)
    card = (tmp_path / "full" / "run" / "README.md").read_text(encoding="utf-8")
    assert "- method: full\n" in card and "()" not in card
    assert "gripping, beautifully acted" not in card  # not a movie line on a kitchen model
    usage = card.split("## How to use")[1]
    assert any(r["text"][:30] in usage for r in kitchen if len(r["text"]) <= 160)


def test_version_and_help_without_type_placeholders() -> None:
    from nlp_transfer import __version__

    assert ok("--version").strip() == f"nlp-transfer {__version__}"
    for command in ([], ["run"], ["predict"], ["report"]):
        help_text = ok(*command, "--help")
        assert "<bool>" not in help_text and "╭" not in help_text


def test_every_training_argument_we_set_says_where_it_is_set() -> None:
    """A train.trainer entry for a TrainingArguments field that nlp-transfer sets is refused with a reason that
    names the train field (or why nlp-transfer sets it): no field may fall through unexplained."""
    from nlp_transfer.recipe import TrainSpec
    from nlp_transfer.train.arguments import SET_BY_NLP_TRANSFER, SET_BY_TRAIN_FIELD, training_arguments

    arguments = training_arguments(TrainSpec(), Path("unused"))
    default = type(arguments)(output_dir="unused")
    from dataclasses import fields

    ours = {f.name for f in fields(arguments) if f.init and getattr(arguments, f.name) != getattr(default, f.name)}
    derived = {"output_dir", "do_eval"}  # do_eval: TrainingArguments derives it from eval_strategy
    derived |= {"use_cpu"}  # comes with bf16 on a CPU (train.precision); a train.trainer.use_cpu of the user's wins
    unexplained = ours - set(SET_BY_TRAIN_FIELD) - set(SET_BY_NLP_TRANSFER) - derived
    assert not unexplained, unexplained


def test_a_tracker_that_is_not_installed_is_one_line_before_the_run_folder(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    from nlp_transfer.recipe.schema import TRACKERS
    from nlp_transfer.train.trackers import INSTALLED
    from tests.conftest import user_error

    assert set(INSTALLED) == set(TRACKERS)  # every tracker the recipe accepts is checked
    missing = [name for name, (available, _) in INSTALLED.items() if not available()]
    assert missing, "every tracker library is installed here: nothing to refuse"
    for name in missing[:3]:
        recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"report_to": [name]})
        user_error(invoke("run", recipe), f"train.report_to: {name} is not installed", "pip install")
        assert not (tmp_path / "run").exists()
