"""Share and reload: push to a (local, fake) Hub, the model card, export (merged LoRA, ONNX), evaluate and predict
from a run folder, a pushed repo id, or a downloaded copy. The real huggingface_hub client runs against
tests/fakehub.py; only the server is local.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import metadata_load, snapshot_download

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.report.card import model_card
from nlp_transfer.use.predict import open_predictor
from nlp_transfer.use.trained import shared_files
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv
from tests.fakehub import DEFAULT_GITATTRIBUTES, FakeHub

# huggingface_hub's LFS PUT passes a file object as `data=`, which httpx2 deprecates: the client's business.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")

TEXTS = ["great movie 3", "awful acting and a dull, lifeless plot that never ends", "a delight", "hated it 7"]
SHARED = {
    "README.md",
    "report.html",
    "curves.png",
    "confusion.png",
    "calibration.png",
    "errors.jsonl",
    "environment.json",
    "metrics.json",
    "recipe.resolved.yaml",
    "task.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer_files.json",  # what the tokenizer consists of: names and sha256, checked by everything that loads
}
MODEL_FILES = {
    "full": {"config.json", "model.safetensors"},
    "lora": {"adapter_config.json", "adapter_model.safetensors", "base_model_config.json"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Path]:
    """Complete runs of tiny BERT on a small sentiment file with its own eval file: full, lora and a mean probe."""
    root = tmp_path_factory.mktemp("share")
    write_sentiment_csv(root / "train.csv")
    write_sentiment_csv(root / "eval.csv", copies=3)
    methods: dict[str, dict[str, Any]] = {"full": {"name": "full"}, "lora": {"name": "lora", "r": 4}}
    methods["probe"] = {"name": "probe", "pooling": "mean"}
    found = {}
    for name, method in methods.items():
        recipe = write_recipe(
            root / name,
            tiny_models["bert"],
            root / "train.csv",
            method=method,
            data={"eval": str(root / "eval.csv")},
            train={"epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 5, "seed": 0},
            card={"language": ["en"], "license": "apache-2.0", "datasets": ["stanfordnlp/sst2"]},
        )
        result = invoke("run", recipe)
        assert result.exit_code == 0, result.output
        found[name] = root / name / "run"
    return found


def copy_run(run: Path, tmp_path: Path) -> Path:
    """A private copy of a module run, for tests that write into it (pushes.json) or break it."""
    target = tmp_path / run.parent.name
    shutil.copytree(run, target)
    return target


def logits(model: str | Path, texts: list[str] = TEXTS) -> torch.Tensor:
    """In fp32: these tests compare copies of one model, which bf16 rounding (the default where the CPU does it)
    would blur at the 1e-3 level."""
    predictor: Any = open_predictor(model, runtime=Runtime.choose(precision="fp32"))
    return torch.cat(list(predictor.logits(texts)))


def pushed(hub: FakeHub, repo_id: str, revision: str = "main") -> dict[str, bytes]:
    files = hub.files(repo_id, revision)
    assert files.pop(".gitattributes") == DEFAULT_GITATTRIBUTES.encode()
    return files


# ---- push ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lora", "full"])
def test_push_uploads_the_model_card_and_recipe_byte_for_byte_in_one_commit(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    run = copy_run(runs[method], tmp_path)
    repo = f"fake-user/tiny-{method}"
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    result = invoke("push", run, "--repo-id", repo, "--commit-message", "first version")
    assert result.exit_code == 0, result.output
    files = pushed(fake_hub, repo)
    assert set(files) == SHARED | MODEL_FILES[method]
    for name, content in files.items():  # every file as it is in the run folder; the card rendered for the repo
        expected = model_card(run, repo_id=repo).encode() if name == "README.md" else (run / name).read_bytes()
        assert content == expected, name
    assert {p for p in fake_hub.lfs_paths(repo) if p.endswith(".safetensors")} == {
        n for n in files if n.endswith(".safetensors")
    }
    history = fake_hub.history(repo)
    assert len(history) == 2 and "first version" in (history[0].title, history[-1].title)  # initial + one commit
    record = json.loads((run / "pushes.json").read_text(encoding="utf-8"))
    assert [(r["repo_id"], r["commit"], r["revision"]) for r in record] == [(repo, fake_hub.head(repo), "main")]
    writes = [r for r in fake_hub.requests if r.method in ("POST", "PUT") and r.step != "lfs-upload"]
    assert writes and all(r.authorization == f"Bearer {fake_hub.token}" for r in writes)
    # The token is never printed, logged or written: the output, and every file of the run and of the repo.
    assert fake_hub.token not in result.output
    for path in run.rglob("*"):
        assert not path.is_file() or fake_hub.token.encode() not in path.read_bytes(), path
    assert all(fake_hub.token.encode() not in content for content in files.values())


@pytest.mark.subprocess
def test_push_in_a_fresh_process_finds_the_hub_through_hf_endpoint(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path
) -> None:
    """The command as a user runs it: a new process, the endpoint and the token from the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env |= {
        "HF_ENDPOINT": fake_hub.url,  # read by huggingface_hub at import, as for a user's mirror or staging Hub
        "HF_TOKEN": fake_hub.token,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_XET": "1",  # the fake speaks LFS; with hf_xet installed the client would upload through Xet
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    run = copy_run(runs["lora"], tmp_path)
    command = [sys.executable, "-m", "nlp_transfer", "push", str(run), "--repo-id", "fake-user/sub"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(pushed(fake_hub, "fake-user/sub")) == SHARED | MODEL_FILES["lora"]
    assert fake_hub.token not in done.stdout + done.stderr


def test_pushed_repo_reloads_anywhere_with_the_same_predictions(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LoRA: the adapter from the repo id (downloaded), from a downloaded copy, and the run folder agree."""
    run = copy_run(runs["lora"], tmp_path)
    repo = "fake-user/tiny-lora"
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    assert invoke("push", run, "--repo-id", repo).exit_code == 0
    expected = logits(run)
    assert torch.allclose(logits(repo), expected, atol=1e-6)
    copy = Path(snapshot_download(repo, local_dir=tmp_path / "download"))
    assert torch.allclose(logits(copy), expected, atol=1e-6)
    from_repo = invoke("predict", repo, *TEXTS)
    from_run = invoke("predict", run, *TEXTS)
    assert from_repo.exit_code == 0, from_repo.output
    assert from_repo.stdout == from_run.stdout
    eval_file = runs["lora"].parent.parent / "eval.csv"
    evaluated = [invoke("evaluate", where, "--data", eval_file) for where in (repo, copy, run)]
    assert all(r.exit_code == 0 for r in evaluated), [r.output for r in evaluated]
    metrics = [json.loads(r.stdout)["metrics"] for r in evaluated]
    assert metrics[0] == metrics[1] == metrics[2]


def test_push_to_a_branch_of_a_private_repo(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(runs["full"], tmp_path)
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    result = invoke("push", run, "--repo-id", "fake-user/b", "--private", "--revision", "experiment")
    assert result.exit_code == 0, result.output
    assert "model.safetensors" in pushed(fake_hub, "fake-user/b", "experiment")
    assert pushed(fake_hub, "fake-user/b", "main") == {}  # main keeps only the repo's initial commit
    assert fake_hub.repos["fake-user/b"].private
    fake_hub.seed("fake-user/public", {"notes.md": b"hello"})  # an existing public repo: --private cannot hold
    user_error(invoke("push", run, "--repo-id", "fake-user/public", "--private"), "is public", "nothing was uploaded")
    assert set(pushed(fake_hub, "fake-user/public")) == {"notes.md"}
    assert torch.allclose(logits_at("fake-user/b", "experiment"), logits(run), atol=1e-6)


def logits_at(repo: str, revision: str) -> torch.Tensor:
    predictor: Any = open_predictor(repo, revision=revision, runtime=Runtime.choose(precision="fp32"))
    return torch.cat(list(predictor.logits(TEXTS)))


def test_a_push_over_another_layout_leaves_no_stale_model_files(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full model pushed where an adapter was: the adapter files go in the same commit (else the repo would still
    load as the adapter); files of the user's own are kept."""
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    repo = "fake-user/replaced"
    assert invoke("push", copy_run(runs["lora"], tmp_path), "--repo-id", repo).exit_code == 0
    fake_hub.seed(repo, {"notes.md": b"my notes"})
    result = invoke("push", copy_run(runs["full"], tmp_path), "--repo-id", repo)
    assert result.exit_code == 0, result.output
    assert "adapter_config.json" in result.stdout  # said what was deleted
    assert set(pushed(fake_hub, repo)) == SHARED | MODEL_FILES["full"] | {"notes.md"}
    assert torch.allclose(logits(repo), logits(runs["full"]), atol=1e-6)


def test_dry_run_lists_the_files_and_prints_the_card_without_a_token_or_a_request(
    fake_hub: FakeHub, runs: dict[str, Path]
) -> None:
    result = invoke("push", runs["lora"], "--repo-id", "fake-user/x", "--dry-run")
    assert result.exit_code == 0, result.output
    assert fake_hub.requests == []
    for name in SHARED | MODEL_FILES["lora"]:
        assert f"  {name}  (" in result.stdout
    assert "run.log" not in result.stdout and "run_status.json" not in result.stdout
    assert "library_name: peft" in result.stdout and 'PeftModel.from_pretrained(base, "fake-user/x")' in result.stdout
    # The adapter's base is a local folder with no known hub id: said in a warning, and in the card.
    assert "warning: the adapter's base model is the local folder" in result.stderr
    assert "no known Hub id" in result.stdout


def test_push_refuses_bad_input_and_claims_nothing(
    fake_hub: FakeHub, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(runs["full"], tmp_path)
    # No token (HF_TOKEN unset, no login): refused before any request.
    user_error(invoke("push", run, "--repo-id", "fake-user/m"), "no Hugging Face token", "HF_TOKEN")
    assert fake_hub.requests == []
    for bad in ("no-owner", "a/b/c", "fake-user/bad name", "fake-user/x--y", "-lead/x", "fake-user/"):
        user_error(invoke("push", run, "--repo-id", bad), f"--repo-id '{bad}'", "owner/name")
    monkeypatch.setenv("HF_TOKEN", "hf_not_the_right_token")
    error = user_error(invoke("push", run, "--repo-id", "fake-user/m"), "refused the token", "nothing was committed")
    assert "hf_not_the_right_token" not in error
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    for step in ("lfs-upload", "commit"):  # the server fails mid-upload: nothing committed, nothing recorded
        fake_hub.fail_on = step
        user_error(invoke("push", run, "--repo-id", "fake-user/m"), "fake-user/m", "nothing was committed")
        assert pushed(fake_hub, "fake-user/m") == {}
        assert not (run / "pushes.json").exists()
    fake_hub.fail_on = None
    assert invoke("push", run, "--repo-id", "fake-user/m").exit_code == 0  # and the retry goes through
    assert "model.safetensors" in pushed(fake_hub, "fake-user/m")


def test_push_refuses_incomplete_failed_and_foreign_folders(runs: dict[str, Path], tmp_path: Path) -> None:
    failed = copy_run(runs["full"], tmp_path)
    status = json.loads((failed / "run_status.json").read_text(encoding="utf-8"))
    (failed / "run_status.json").write_text(json.dumps(status | {"state": "failed"}), encoding="utf-8")
    user_error(invoke("push", failed, "--repo-id", "u/m", "--dry-run"), "the run is failed, not complete")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}", encoding="utf-8")
    user_error(invoke("push", foreign, "--repo-id", "u/m", "--dry-run"), "not an nlp-transfer model")
    user_error(invoke("push", tmp_path / "missing", "--repo-id", "u/m", "--dry-run"), "no such folder")
    incomplete = tmp_path / "incomplete"
    shutil.copytree(runs["full"], incomplete)
    (incomplete / "run_status.json").unlink()
    (incomplete / "model.safetensors").unlink()
    (incomplete / "config.json").unlink()
    user_error(invoke("push", incomplete, "--repo-id", "u/m", "--dry-run"), "no model files", "incomplete")


# ---- the model card -------------------------------------------------------------------------------------------------


def test_card_metadata_matches_the_run(runs: dict[str, Path], tmp_path: Path) -> None:
    run = runs["full"]
    card = tmp_path / "README.md"
    card.write_text(model_card(run, repo_id="fake-user/tiny"), encoding="utf-8")
    header = metadata_load(card)
    assert header is not None
    assert header["library_name"] == "transformers" and header["pipeline_tag"] == "text-classification"
    assert {"nlp-transfer", "full"} <= set(header["tags"])
    assert header["datasets"] == ["stanfordnlp/sst2"] and header["language"] == ["en"]
    assert header["license"] == "apache-2.0"
    assert "base_model" not in header  # a local folder with no known hub id
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
    (entry,) = header["model-index"]
    assert entry["name"] == "fake-user/tiny"
    found = {m["type"]: m["value"] for result in entry["results"] for m in result["metrics"]}
    assert found == {k: round(metrics[f"eval_{k}"], 4) for k in ("accuracy", "macro_f1")}
    text = card.read_text(encoding="utf-8")
    for fact in ("0: negative", "1: positive", "trainable parameters", "learning rate: 0.005", "## Limitations"):
        assert fact in text
    assert 'pipeline("text-classification", model="fake-user/tiny")' in text


def test_card_names_the_hub_id_of_a_local_copy(runs: dict[str, Path], tmp_path: Path) -> None:
    """card.base_model says which hub model a local folder is; the card links it and the adapter names it."""
    recipe_path = runs["lora"].parent / "recipe.yaml"
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    recipe["card"]["base_model"] = "google-bert/bert-base-uncased"
    recipe["output"]["dir"] = str(tmp_path / "run")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert invoke("run", tmp_path / "recipe.yaml", "-o", "train.max_steps=1").exit_code == 0
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert "base_model: google-bert/bert-base-uncased" in card and "loaded from a local copy" in card
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["base_model_name_or_path"] == "google-bert/bert-base-uncased"


# ---- export -----------------------------------------------------------------------------------------------------


def test_merged_lora_export_predicts_what_the_adapter_predicts(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = invoke("export", runs["lora"], "--merge", "--output-dir", out)
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    texts = [line.split(",")[0] for line in (runs["lora"].parent.parent / "eval.csv").read_text().splitlines()[1:]]
    adapter, merged = logits(runs["lora"], texts), logits(out, texts)
    assert torch.equal(adapter.argmax(-1), merged.argmax(-1))
    assert float((adapter - merged).abs().max()) < 1e-4
    # A plain transformers folder now: loads without peft and without the base model.
    from transformers import AutoModelForSequenceClassification

    plain = AutoModelForSequenceClassification.from_pretrained(out)
    assert plain.config.id2label == {0: "negative", 1: "positive"}
    assert "library_name: transformers" in (out / "README.md").read_text(encoding="utf-8")
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert record["merge"]["max_abs_logit_difference"] < 1e-4


def test_export_without_merge_is_the_push_file_set_and_reloads(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "probe-copy"
    assert invoke("export", runs["probe"], "--output-dir", out).exit_code == 0
    names = {p.relative_to(out).as_posix() for p in shared_files(out)}
    assert names == {p.relative_to(runs["probe"]).as_posix() for p in shared_files(runs["probe"])} | {"export.json"}
    assert torch.allclose(logits(out), logits(runs["probe"]), atol=1e-6)  # probe.json: the mean pooling kept


def test_export_refuses_what_it_must_not_do(runs: dict[str, Path], tmp_path: Path) -> None:
    user_error(
        invoke("export", runs["full"], "--merge", "--output-dir", tmp_path / "m"), "not a LoRA adapter", "drop --merge"
    )
    assert not (tmp_path / "m").exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    user_error(invoke("export", runs["full"], "--output-dir", taken), "not an nlp-transfer export")
    assert (taken / "notes.txt").read_text(encoding="utf-8") == "mine"
    out = tmp_path / "out"
    assert invoke("export", runs["full"], "--output-dir", out).exit_code == 0
    user_error(invoke("export", runs["full"], "--output-dir", out), "--overwrite")
    assert invoke("export", runs["lora"], "--output-dir", out, "--merge", "--overwrite").exit_code == 0
    assert json.loads((out / "export.json").read_text(encoding="utf-8"))["merge"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folders left


def test_onnx_export_matches_pytorch(runs: dict[str, Path], tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    result = invoke("export", runs["lora"], "--merge", "--onnx", "--output-dir", out)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))["onnx"]
    assert record["max_abs_logit_difference"] < 1e-4
    # Our own check, on other texts in a padded batch of another size.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(TEXTS[:3], padding=True, truncation=True, max_length=32, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (found,) = session.run(["logits"], {name: inputs[name] for name in record["inputs"]})
    assert np.abs(found - logits(runs["lora"], TEXTS[:3]).numpy()).max() < 1e-4


# ---- evaluate -----------------------------------------------------------------------------------------------------


def test_evaluate_on_the_runs_eval_file_reproduces_its_eval_metrics(runs: dict[str, Path], tmp_path: Path) -> None:
    for run in runs.values():
        out = tmp_path / f"{run.parent.name}.json"
        result = invoke("evaluate", run, "--data", run.parent.parent / "eval.csv", "--out", out)
        assert result.exit_code == 0, result.output
        found = json.loads(out.read_text(encoding="utf-8"))
        assert found == json.loads(result.stdout) and found["rows"] == 36
        expected = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
        for name in ("accuracy", "macro_f1", "f1_positive", "recall_negative"):
            assert found["metrics"][name] == pytest.approx(expected[f"eval_{name}"], abs=1e-9), name
        assert found["metrics"]["loss"] == pytest.approx(expected["eval_loss"], abs=1e-4)
        assert "accuracy" in result.stderr  # the summary line


def test_evaluate_reads_other_columns_and_rejects_bad_data(runs: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.tsv"
    renamed.write_text("sentence\tsentiment\ngreat movie 1\tpositive\nawful acting 2\tnegative\n", encoding="utf-8")
    result = invoke("evaluate", runs["full"], "--data", renamed, "--text", "sentence", "--label", "sentiment")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2
    user_error(invoke("evaluate", runs["full"], "--data", renamed), "no column 'text'", "--text")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("text,label\ngreat,neutral\n", encoding="utf-8")
    user_error(invoke("evaluate", runs["full"], "--data", unknown), "'neutral' is not one of the model's labels")
    user_error(invoke("evaluate", runs["full"], "--data", tmp_path / "none.csv"), "--data", "not found")
    user_error(invoke("evaluate", tmp_path / "nothing", "--data", renamed), "no such folder")
    # owner/name that is neither a folder nor cached, offline: both possibilities named
    user_error(invoke("evaluate", "nobody/nothing", "--data", renamed), "no folder of that name", "HF_HUB_OFFLINE")


def test_evaluate_a_qa_run_reproduces_its_eval_scores(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from tests.unit.test_qa import METHODS, write_qa_recipe

    recipe = write_qa_recipe(tmp_path, tiny_models["bert"], METHODS["full"])
    assert invoke("run", recipe).exit_code == 0
    result = invoke("evaluate", tmp_path / "run", "--data", "squad_mini/dev.json", "--max-samples", 12, "--seed", 0)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["metrics"]
    expected = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))["eval"]
    assert found["total"] == 12
    assert found["exact_match"] == pytest.approx(expected["eval_exact_match"])
    assert found["f1"] == pytest.approx(expected["eval_f1"])
