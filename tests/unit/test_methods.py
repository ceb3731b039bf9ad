"""The transfer methods on tiny BERT / DistilBERT / RoBERTa / GPT-2 models: what each one trains (checked against the
saved weights), what its run folder holds, and that predict rebuilds exactly the model that was trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from nlp_transfer.cli import app
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.recipe import load_recipe
from nlp_transfer.runfolder.folder import open_run_folder
from nlp_transfer.train.pipeline import PreparedRun, RunOptions, prepare_run, train_and_save
from nlp_transfer.use.predict import open_predictor
from tests.conftest import write_recipe

TEXTS = ["great movie", "awful acting and a dull, lifeless plot that never ends", "a delight 3", "hated it"]
MAX_LENGTH = 32  # write_recipe's task.max_length

# State-dict key prefixes, written out here rather than read from methods.architectures so that the table is
# checked, not trusted.
EMBEDDINGS = {
    "bert": ("bert.embeddings.",),
    "distilbert": ("distilbert.embeddings.",),
    "roberta": ("roberta.embeddings.",),
    "gpt2": ("transformer.wte.", "transformer.wpe."),
}
LAYER = {  # format with the block index
    "bert": "bert.encoder.layer.{}.",
    "distilbert": "distilbert.transformer.layer.{}.",
    "roberta": "roberta.encoder.layer.{}.",
    "gpt2": "transformer.h.{}.",
}
HEAD = {
    "bert": ("bert.pooler.", "classifier."),
    "distilbert": ("pre_classifier.", "classifier."),
    "roberta": ("classifier.",),
    "gpt2": ("score.",),
}
DEFAULT_LORA_TARGETS = {
    "bert": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "roberta": ["query", "value"],
    "gpt2": ["c_attn"],
}


# ---- helpers ----------------------------------------------------------------------------------------------------


def train_in_process(recipe: Path) -> tuple[PreparedRun, Path]:
    """What `run` does, keeping the trained in-memory model (setup.model) for comparison with what predict loads."""
    loaded = load_recipe(recipe)
    run_dir = Path(loaded.recipe.output.dir or "")
    setup = prepare_run(loaded, RunOptions())
    with open_run_folder(run_dir, False) as folder:
        folder.write_text("recipe.resolved.yaml", loaded.to_yaml())  # predict reads the task and method from it
        train_and_save(setup, folder)
    return setup, run_dir


def run_cli(recipe: Path) -> Path:
    result = CliRunner().invoke(app, ["run", str(recipe)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return Path(yaml.safe_load(recipe.read_text())["output"]["dir"])


def logits_of(model: torch.nn.Module, tokenizer: Any, texts: list[str] = TEXTS) -> torch.Tensor:
    """Logits for a padded batch of texts, truncated as training did."""
    model.eval()
    inputs = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(**inputs).logits.float()


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def metrics_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())


def with_prefix(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] | str) -> dict[str, torch.Tensor]:
    found = {k: v for k, v in state.items() if k.startswith(prefixes)}
    assert found, f"no weights under {prefixes}; keys: {sorted(state)[:10]}..."
    return found


def unchanged(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefixes: tuple[str, ...] | str) -> None:
    for key, tensor in with_prefix(before, prefixes).items():
        assert torch.equal(tensor, after[key]), f"{key} changed, but it should have been frozen"


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefixes: tuple[str, ...] | str) -> None:
    """Every matrix under the prefixes moved (vectors may legitimately get no gradient, e.g. BERT's key bias)."""
    matrices = {k: v for k, v in with_prefix(before, prefixes).items() if v.dim() == 2}
    assert matrices, f"no weight matrices under {prefixes}"
    for key, tensor in matrices.items():
        assert not torch.equal(tensor, after[key]), f"{key} did not change, but it should have trained"


def size(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] | str) -> int:
    return sum(v.numel() for v in with_prefix(state, prefixes).values())


def head_inputs(run_dir: Path, texts: list[str] = TEXTS) -> tuple[Any, dict[str, torch.Tensor]]:
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    return tokenizer, dict(tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt"))


# ---- 1. LoRA ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "roberta", "gpt2"])
def test_lora_run_folder_and_predict_give_the_trained_models_predictions(
    architecture: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    merged = architecture in {"bert", "gpt2"}  # save_merged on two architectures (one per weight layout) is enough
    recipe = write_recipe(
        tmp_path,
        tiny_models[architecture],
        sentiment_csv,
        method={"name": "lora", "save_merged": merged},
        # fp32: the check is that the saved adapter is the trained one, exactly (bf16 would blur it at 1e-3)
        train={"max_steps": 6, "warmup_ratio": 0.0, "precision": "fp32"},
    )
    setup, run_dir = train_in_process(recipe)

    # The folder holds the adapter and what rebuilds the model, not a full model.
    names = {p.name for p in run_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "base_model_config.json", "tokenizer.json"} <= names
    assert not names & {"config.json", "model.safetensors"}, names
    adapter_bytes = (run_dir / "adapter_model.safetensors").stat().st_size
    base_bytes = (tiny_models[architecture] / "model.safetensors").stat().st_size
    assert adapter_bytes * 20 < base_bytes, (adapter_bytes, base_bytes)
    adapter_config = json.loads((run_dir / "adapter_config.json").read_text())
    assert sorted(adapter_config["target_modules"]) == DEFAULT_LORA_TARGETS[architecture]
    assert Path(adapter_config["base_model_name_or_path"]) == tiny_models[architecture]
    base_config = json.loads((run_dir / "base_model_config.json").read_text())
    assert base_config["id2label"] == {"0": "negative", "1": "positive"}

    # What predict loads gives exactly the logits of the model that was trained.
    trained = logits_of(setup.model, setup.tokenizer)
    predictor = open_predictor(run_dir, runtime=Runtime.choose(precision="fp32"))
    reloaded = logits_of(predictor.model, predictor.tokenizer)
    torch.testing.assert_close(reloaded, trained, rtol=0, atol=1e-6)
    rows = list(predictor.predict(TEXTS))
    assert [row["label"] for row in rows] == [predictor.id2label[i] for i in trained.argmax(-1).tolist()]
    for row, probabilities in zip(rows, trained.softmax(-1).tolist(), strict=True):
        assert row["probability"] == pytest.approx(max(probabilities), abs=1e-5)

    # The LoRA updates did something: the adapted model differs from its base without the adapter.
    with setup.model.disable_adapter():
        base_logits = logits_of(setup.model, setup.tokenizer)
    assert not torch.allclose(base_logits, trained, atol=1e-6)

    if merged:
        merged_dir = run_dir / "merged"
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in merged_dir.iterdir()}
        plain = AutoModelForSequenceClassification.from_pretrained(merged_dir)
        merged_logits = logits_of(plain, AutoTokenizer.from_pretrained(merged_dir))
        torch.testing.assert_close(merged_logits, trained, rtol=0, atol=1e-4)
        assert merged_logits.argmax(-1).tolist() == trained.argmax(-1).tolist()
        assert not any(".lora_" in key for key in weights(merged_dir)), "merged folder still holds LoRA weights"
    else:
        assert not (run_dir / "merged").exists()


# ---- 2. probe ---------------------------------------------------------------------------------------------------


def eval_loss_and_accuracy(model: torch.nn.Module, setup: PreparedRun) -> tuple[float, float]:
    """The eval split (the run's own seeded hold-out, as tokenized for training), through `model` in one batch."""
    from transformers import DataCollatorWithPadding

    split = setup.prepared.splits["eval"]
    batch = DataCollatorWithPadding(setup.tokenizer)([split[i] for i in range(len(split))])
    model.eval()
    with torch.inference_mode():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    loss = torch.nn.functional.cross_entropy(logits, batch["labels"]).item()
    accuracy = (logits.argmax(-1) == batch["labels"]).float().mean().item()
    return loss, accuracy


def assert_probe_trained_only_the_head(architecture: str, pretrained: Path, run_dir: Path) -> None:
    before, after = weights(pretrained), weights(run_dir)
    assert before.keys() == after.keys()
    body = {k for k in before if not k.startswith(HEAD[architecture])}
    assert body, "no encoder weights found"
    for key in body:
        assert torch.equal(before[key], after[key]), f"{key}: a probe must not change the encoder"
    changed(before, after, HEAD[architecture])
    assert metrics_of(run_dir)["train"]["trainable_parameters"] == size(after, HEAD[architecture])


@pytest.mark.parametrize("architecture", ["bert", "gpt2"])
def test_probe_with_native_pooling_saves_a_plain_model_with_only_the_head_trained(
    architecture: str,
    tiny_models: dict[str, Path],
    sentiment_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An empty feature cache: this run extracts its own features (another test may have cached the same ones).
    monkeypatch.setenv("NLP_TRANSFER_CACHE", str(tmp_path / "cache"))
    recipe = write_recipe(
        tmp_path, tiny_models[architecture], sentiment_csv, method={"name": "probe"}, train={"epochs": 2}
    )
    setup, run_dir = train_in_process(recipe)

    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "probe.json" not in names and "adapter_config.json" not in names
    assert_probe_trained_only_the_head(architecture, tiny_models[architecture], run_dir)

    metrics = metrics_of(run_dir)
    train = metrics["train"]
    assert train["method"] == "probe"
    assert 0 < train["trainable_parameters"] < train["total_parameters"]
    # The head trained on features this run extracted itself (no split came from the feature cache)
    assert train["train_wall_seconds"] > 0 and train["feature_cache_hits"] == []
    assert "phases" not in metrics

    # The head trained on cached features is the head of the saved model: plain transformers, reading token ids,
    # reproduces the eval loss and accuracy the run reported.
    plain = AutoModelForSequenceClassification.from_pretrained(run_dir)
    loss, accuracy = eval_loss_and_accuracy(plain, setup)
    assert loss == pytest.approx(metrics["eval"]["eval_loss"], abs=1e-4)
    assert accuracy == pytest.approx(metrics["eval"]["eval_accuracy"], abs=1e-6)
    predictor = open_predictor(run_dir)
    torch.testing.assert_close(logits_of(predictor.model, predictor.tokenizer), logits_of(plain, predictor.tokenizer))


def pooled_logits(run_dir: Path, architecture: str, pooling: str, layer: int) -> torch.Tensor:
    """A probe's logits computed by hand: hidden states of one layer, pooled, through the model's own head."""
    model = AutoModelForSequenceClassification.from_pretrained(run_dir).eval()
    _, inputs = head_inputs(run_dir)
    mask = inputs["attention_mask"]
    with torch.inference_mode():
        hidden = model.base_model(**inputs, output_hidden_states=True).hidden_states[layer]  # (B, T, H)
        if pooling == "mean":
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        elif pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last real token; right padding
            pooled = hidden[torch.arange(len(hidden)), mask.sum(1) - 1]
        if architecture == "bert":
            return model.classifier(torch.tanh(model.bert.pooler.dense(pooled)))
        assert architecture == "gpt2"
        return model.score(pooled)


@pytest.mark.parametrize(
    ("architecture", "method", "probe_file"),
    [
        ("bert", {"pooling": "mean"}, {"pooling": "mean", "layer": -1}),
        ("gpt2", {"layer": 1}, {"pooling": "last", "layer": 1}),
    ],
    ids=["bert-mean", "gpt2-layer1"],
)
def test_probe_with_other_pooling_or_layer_predicts_through_that_pooling(
    architecture: str,
    method: dict[str, Any],
    probe_file: dict[str, Any],
    tiny_models: dict[str, Path],
    sentiment_csv: Path,
    tmp_path: Path,
) -> None:
    recipe = write_recipe(
        tmp_path, tiny_models[architecture], sentiment_csv, method={"name": "probe", **method}, train={"epochs": 2}
    )
    setup, run_dir = train_in_process(recipe)

    assert json.loads((run_dir / "probe.json").read_text()) == probe_file
    assert_probe_trained_only_the_head(architecture, tiny_models[architecture], run_dir)

    predictor = open_predictor(run_dir)
    predicted = logits_of(predictor.model, predictor.tokenizer)
    by_hand = pooled_logits(run_dir, architecture, probe_file["pooling"], probe_file["layer"])
    torch.testing.assert_close(predicted, by_hand, rtol=0, atol=1e-5)
    # ... which is not what the saved model's own forward (native pooling of the last layer) gives.
    native = logits_of(AutoModelForSequenceClassification.from_pretrained(run_dir), predictor.tokenizer)
    assert not torch.allclose(predicted, native, atol=1e-4)
    rows = list(predictor.predict(TEXTS))
    assert [row["label"] for row in rows] == [predictor.id2label[i] for i in predicted.argmax(-1).tolist()]

    # Training read the same pooling as predict does: the reloaded probe reproduces the reported eval loss.
    loss, accuracy = eval_loss_and_accuracy(predictor.model, setup)
    metrics = metrics_of(run_dir)
    assert loss == pytest.approx(metrics["eval"]["eval_loss"], abs=1e-4)
    assert accuracy == pytest.approx(metrics["eval"]["eval_accuracy"], abs=1e-6)


def test_probe_reuses_cached_features_in_a_second_identical_run(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NLP_TRANSFER_CACHE", str(tmp_path / "cache"))  # empty: the first run must compute
    runs = []
    for name in ("first", "second"):
        recipe = write_recipe(
            tmp_path / name, tiny_models["distilbert"], sentiment_csv, method={"name": "probe"}, train={"epochs": 2}
        )
        runs.append(run_cli(recipe))
    first, second = (metrics_of(run) for run in runs)
    assert first["train"]["feature_cache_hits"] == []
    assert {"train", "eval"} <= set(second["train"]["feature_cache_hits"])
    assert list((tmp_path / "cache" / "features").glob("*.safetensors"))
    # Cached features are the computed ones: the same head, the same metrics.
    assert second["eval"]["eval_loss"] == first["eval"]["eval_loss"]
    assert second["train"]["train_loss"] == first["train"]["train_loss"]
    for key, tensor in weights(runs[0]).items():
        assert torch.equal(tensor, weights(runs[1])[key]), key


# ---- 3. unfreeze_last -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "roberta", "gpt2"])
def test_unfreeze_last_trains_only_the_top_layer_and_the_head(
    architecture: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(
        tmp_path,
        tiny_models[architecture],
        sentiment_csv,
        method={"name": "unfreeze_last", "layers": 1},
        train={"max_steps": 4, "warmup_ratio": 0.0},
    )
    run_dir = run_cli(recipe)
    before, after = weights(tiny_models[architecture]), weights(run_dir)
    assert before.keys() == after.keys()

    unchanged(before, after, EMBEDDINGS[architecture])
    unchanged(before, after, LAYER[architecture].format(0))
    changed(before, after, LAYER[architecture].format(1))  # tiny models have 2 layers: 1 is the last
    changed(before, after, HEAD[architecture])
    trainable = [LAYER[architecture].format(1), *HEAD[architecture]]
    if architecture == "gpt2":  # the final layer norm sits between the last block and the head: it trains too
        assert not torch.equal(before["transformer.ln_f.weight"], after["transformer.ln_f.weight"])
        trainable.append("transformer.ln_f.")
    frozen = [k for k in before if not k.startswith(tuple(trainable))]
    for key in frozen:
        assert torch.equal(before[key], after[key]), f"{key} changed, but it should have been frozen"

    train = metrics_of(run_dir)["train"]
    assert train["method"] == "unfreeze_last"
    assert size(after, HEAD[architecture]) < train["trainable_parameters"] < train["total_parameters"]
    assert train["trainable_parameters"] == size(after, tuple(trainable))


# ---- 4. probe_then_finetune -------------------------------------------------------------------------------------


def test_probe_then_finetune_runs_two_phases_and_then_trains_the_encoder(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        sentiment_csv,
        method={"name": "probe_then_finetune", "probe_epochs": 2},
        train={"epochs": 1, "logging_steps": 2},
    )
    run_dir = run_cli(recipe)
    metrics = metrics_of(run_dir)

    phases = metrics["phases"]
    assert list(phases) == ["probe", "finetune"]
    for phase in phases.values():
        assert {"train_loss", "train_runtime", "trainable_parameters"} <= set(phase["train"])
        assert {"eval_loss", "eval_accuracy"} <= set(phase["eval"])
    after = weights(run_dir)
    probe, finetune = phases["probe"]["train"], phases["finetune"]["train"]
    assert probe["trainable_parameters"] == size(after, HEAD["bert"])
    assert probe["trainable_parameters"] < finetune["trainable_parameters"] == finetune["total_parameters"]
    assert probe["epoch"] == pytest.approx(2) and finetune["epoch"] == pytest.approx(1)
    assert "feature_cache_hits" in probe and "feature_cache_hits" not in finetune
    # The run's headline metrics are the last phase's.
    assert metrics["eval"] == phases["finetune"]["eval"]
    assert metrics["train"]["method"] == "probe_then_finetune"

    log = [json.loads(line) for line in (run_dir / "trainer_log.jsonl").read_text().splitlines()]
    assert {row["phase"] for row in log} == {"probe", "finetune"}
    first_finetune = next(i for i, row in enumerate(log) if row["phase"] == "finetune")
    assert all(row["phase"] == "probe" for row in log[:first_finetune]), "phases are logged in order"
    assert all(row["phase"] == "finetune" for row in log[first_finetune:])

    before = weights(tiny_models["bert"])
    changed(before, after, "bert.embeddings.")
    changed(before, after, LAYER["bert"].format(0))
    changed(before, after, LAYER["bert"].format(1))
    assert AutoModelForSequenceClassification.from_pretrained(run_dir).config.id2label[1] == "positive"


# ---- 5. scratch -------------------------------------------------------------------------------------------------


def test_scratch_reinitialises_the_pretrained_weights(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(
        tmp_path,
        tiny_models["bert"],
        sentiment_csv,
        method={"name": "scratch"},
        # one step of at most lr 1e-3 per weight (Adam) cannot move a weight far; seed 7 so that the fresh
        # initialisation does not replay the seeded one the tiny model was built with
        train={"max_steps": 1, "seed": 7},
    )
    run_dir = run_cli(recipe)
    before, after = weights(tiny_models["bert"]), weights(run_dir)
    assert before.keys() == after.keys()
    for key in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        distance = (after[key] - before[key]).abs().mean().item()
        assert distance > 0.01, f"{key}: mean |scratch - pre-trained| = {distance}: not re-initialised"
        assert after[key].std().item() == pytest.approx(0.02, rel=0.25)  # BERT's initializer_range
    train = metrics_of(run_dir)["train"]
    assert train["method"] == "scratch"
    assert train["trainable_parameters"] == train["total_parameters"]
    config = AutoModelForSequenceClassification.from_pretrained(run_dir).config
    assert config.id2label == {0: "negative", 1: "positive"} and config.num_hidden_layers == 2


# ---- 6. the probe command -----------------------------------------------------------------------------------------


def test_probe_command_runs_the_recipe_as_a_probe_and_predict_reads_it(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["roberta"], sentiment_csv, method={"name": "lora"})
    out = tmp_path / "probe-run"
    result = CliRunner().invoke(app, ["probe", str(recipe), "--freeze-encoder", "--output-dir", str(out)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert not (tmp_path / "run").exists(), "--output-dir replaces the recipe's output.dir"

    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["method"]["name"] == "probe"
    assert resolved["method"]["pooling"] == "native" and resolved["method"]["layer"] == -1
    assert metrics_of(out)["train"]["method"] == "probe"
    assert not (out / "adapter_config.json").exists()
    assert_probe_trained_only_the_head("roberta", tiny_models["roberta"], out)

    predicted = CliRunner().invoke(app, ["predict", str(out), "some text", "loved it"])
    assert predicted.exit_code == 0, f"{predicted.output}\n{predicted.exception!r}"
    rows = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["some text", "loved it"]
    for row in rows:
        assert row["label"] in {"negative", "positive"}
        assert 0.5 <= row["probability"] <= 1.0
        assert row["probability"] == max(row["probabilities"].values())
