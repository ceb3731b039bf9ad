"""The GPU path (pytest -m gpu; skipped without CUDA): full, LoRA, probe and QA runs, predict and evaluate on the GPU,
bf16 and fp16, on a tiny BERT. Self-contained (its data is written here), so scripts/device_check.sh can run it on a
GPU machine that has neither ../shared nor the MiniLM package: the tokenizer comes from $NLP_TRANSFER_TEST_TOKENIZER
(MiniLM's tokenizer files, which the script carries) or the installed MiniLM."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.conftest import invoke, minilm_dir, write_recipe, write_sentiment_csv

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    source = os.environ.get("NLP_TRANSFER_TEST_TOKENIZER") or minilm_dir()
    if source is None:
        pytest.fail("no tokenizer: set NLP_TRANSFER_TEST_TOKENIZER to MiniLM's tokenizer files (device_check.sh)")
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    folder = tmp_path_factory.mktemp("gpu") / "tiny-bert"
    torch.manual_seed(0)
    BertForQuestionAnswering(config).save_pretrained(folder)  # the body; each task adds its own head
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sentiment_csv(tmp_path_factory.mktemp("gpu-data") / "sentiment.csv", copies=16)


def train(tmp_path: Path, model: Path, data: Path, **sections: Any) -> dict[str, Any]:
    recipe = write_recipe(tmp_path, model, data, **sections)
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    return {
        "run": run,
        "metrics": json.loads((run / "metrics.json").read_text()),
        "environment": json.loads((run / "environment.json").read_text()),
    }


def test_full_fine_tuning_on_the_gpu_in_bf16_by_default(tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    found = train(tmp_path, tiny_bert, data, train={"epochs": 3, "learning_rate": 2e-3})
    expected = "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16"
    assert found["metrics"]["train"]["precision"] == expected
    assert found["environment"]["precision"]["device"] == "cuda"
    assert found["metrics"]["eval"]["eval_accuracy"] > 0.75  # the words decide the label: it must learn


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_fp16_with_loss_scaling_and_fp32_train(tiny_bert: Path, data: Path, tmp_path: Path, precision: str) -> None:
    found = train(tmp_path, tiny_bert, data, train={"epochs": 3, "learning_rate": 2e-3, "precision": precision})
    assert found["metrics"]["train"]["precision"] == precision
    assert found["metrics"]["eval"]["eval_accuracy"] > 0.75


def test_lora_and_probe_train_on_the_gpu(tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    lora = train(tmp_path / "lora", tiny_bert, data, method={"name": "lora", "r": 4}, train={"learning_rate": 5e-3})
    assert (lora["run"] / "adapter_model.safetensors").is_file()
    probe = train(tmp_path / "probe", tiny_bert, data, method={"name": "probe", "pooling": "mean"})
    assert probe["metrics"]["train"]["feature_cache_hits"] == []  # features extracted by this run (on the GPU)
    assert probe["metrics"]["train"]["trainable_parameters"] < probe["metrics"]["train"]["total_parameters"]


def test_predict_and_evaluate_on_the_gpu_agree_with_the_cpu(tiny_bert: Path, data: Path, tmp_path: Path) -> None:
    run = train(tmp_path, tiny_bert, data, train={"epochs": 3, "learning_rate": 2e-3})["run"]
    texts = ["great movie 3", "awful acting", "a delight", "painful mess 9"]
    on_gpu = invoke("predict", run, *texts, "--device", "cuda", "--precision", "fp32")
    on_cpu = invoke("predict", run, *texts, "--device", "cpu", "--precision", "fp32")
    fast = invoke("predict", run, *texts, "--device", "cuda:0")  # bf16 / fp16 autocast
    assert on_gpu.exit_code == on_cpu.exit_code == fast.exit_code == 0, on_gpu.output
    rows = [[json.loads(line) for line in r.stdout.splitlines()] for r in (on_gpu, on_cpu, fast)]
    assert [r["label"] for r in rows[0]] == [r["label"] for r in rows[1]] == [r["label"] for r in rows[2]]
    for gpu, cpu in zip(rows[0], rows[1], strict=True):
        assert gpu["probability"] == pytest.approx(cpu["probability"], abs=1e-3)
    evaluated = invoke("evaluate", run, "--data", data, "--device", "cuda")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["runtime"].startswith("cuda")


def test_qa_trains_and_answers_on_the_gpu(tiny_bert: Path, tmp_path: Path) -> None:
    context = "The Eiffel Tower was finished in 1889 in Paris. It was designed by the company of Gustave Eiffel."
    rows = [
        {"question": q, "context": context, "answers": {"text": [a], "answer_start": [context.index(a)]}}
        for q, a in (("When was the tower finished?", "1889"), ("Who designed it?", "Gustave Eiffel"))
    ] * 8
    file = tmp_path / "qa.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    recipe = {
        "model": {"name": str(tiny_bert)},
        "task": {"name": "qa", "max_length": 64, "stride": 16},
        "data": {"train": str(file), "eval": str(file)},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "seed": 0},
        "output": {"dir": str(tmp_path / "run")},
    }
    (tmp_path / "qa.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert invoke("run", tmp_path / "qa.yaml").exit_code == 0
    answered = invoke("predict", tmp_path / "run", "--question", "Who designed it?", "--context", context)
    assert answered.exit_code == 0, answered.output
    answer = json.loads(answered.stdout)
    assert context[answer["start"] : answer["end"]] == (answer["answer"] or "")
