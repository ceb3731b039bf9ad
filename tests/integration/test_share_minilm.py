"""Real all-MiniLM-L6-v2 with LoRA on SST-2, shared and reloaded: pushed to the local Hub server and evaluated from
the repo id, exported merged; every route gives the run folder's predictions. CI's real-model smoke test of sharing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import metadata_load

from nlp_transfer.core.hardware import Runtime
from nlp_transfer.data.loading import load_extra_split
from nlp_transfer.use.predict import open_predictor
from tests.conftest import DATA_ROOT, invoke
from tests.fakehub import FakeHub

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning"),
]


def dev_texts(count: int) -> list[str]:
    dev = load_extra_split("sst2/dev.tsv", split="eval", field="dev", data_root=DATA_ROOT, base_dir=None)
    return [str(text) for text in dev.splits["eval"]["sentence"][:count]]


def logits(model: str | Path, texts: list[str]) -> torch.Tensor:
    predictor: Any = open_predictor(model, batch_size=64, runtime=Runtime.choose("cpu", "fp32"))  # exact comparisons
    return torch.cat(list(predictor.logits(texts)))


def test_minilm_lora_pushed_evaluated_and_merged_gives_the_same_predictions(
    minilm: Path, fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    recipe = REPO / "recipes" / "sst2_minilm_lora.yaml"
    small = ("-o", "data.max_train_samples=600", "-o", "data.max_eval_samples=200", "-o", "train.batch_size=16")
    result = invoke("run", recipe, "--output-dir", run, *small)
    assert result.exit_code == 0, result.output
    adapter = json.loads((run / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"  # not the installed copy

    repo = "fake-user/sst2-minilm-lora"
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    pushed = invoke("push", run, "--repo-id", repo)
    assert pushed.exit_code == 0, pushed.output
    card = tmp_path / "card.md"
    card.write_bytes(fake_hub.files(repo)["README.md"])
    header = metadata_load(card)
    assert header is not None
    assert header["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and header["library_name"] == "peft"
    assert header["datasets"] == ["stanfordnlp/sst2"]

    eval_file = tmp_path / "dev200.tsv"  # the run's 200 eval sentences are a seeded subset; score a fixed 200
    lines = (DATA_ROOT / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()
    eval_file.write_text("\n".join(lines[:201]) + "\n", encoding="utf-8")
    scores = {}
    for where in (run, repo):
        evaluated = invoke("evaluate", where, "--data", eval_file)
        assert evaluated.exit_code == 0, evaluated.output
        scores[str(where)] = json.loads(evaluated.stdout)["metrics"]
    assert scores[str(run)] == scores[repo]
    assert scores[repo]["accuracy"] > 0.6  # 600 sentences of LoRA: learning, not chance

    merged = tmp_path / "merged"
    assert invoke("export", run, "--merge", "--output-dir", merged).exit_code == 0
    texts = dev_texts(200)
    expected = logits(run, texts)
    for model in (repo, merged):
        found = logits(model, texts)
        assert torch.equal(found.argmax(-1), expected.argmax(-1)), model
        assert float((found - expected).abs().max()) < 1e-4, model
