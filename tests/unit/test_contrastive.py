"""method contrastive (SetFit-style few-shot): pairs over label sets, the two phases on a tiny BERT, the run folder
that predict / evaluate / export read, class-balanced few-shot subsets, and the bad input it refuses."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.data.loading import load_data
from nlp_transfer.methods.contrastive import PairCollator, PairDataset, PairEncoder, cosine_loss, margin_loss
from nlp_transfer.methods.pairs import check_pairable, draw_pairs, jaccard, label_sets
from nlp_transfer.recipe import DataSpec
from nlp_transfer.use.predict import open_predictor
from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv
from tests.unit.test_methods import TEXTS, head_inputs, logits_of, train_in_process

# ---- pairs ------------------------------------------------------------------------------------------------------


def test_pairs_are_half_same_label_seeded_and_never_self() -> None:
    sets = label_sets([0, 0, 0, 1, 1, 2, 2, 2])
    pairs = draw_pairs(sets, per_example=6, seed=3)
    assert len(pairs) == 8 * 6
    starts = Counter(p.first for p in pairs)
    assert set(starts.values()) == {6}  # every example starts per_example pairs
    for pair in pairs:
        assert pair.first != pair.second
        same = sets[pair.first] == sets[pair.second]
        assert pair.similarity == (1.0 if same else 0.0)
    assert sum(p.similarity == 1.0 for p in pairs) == 8 * 3  # half positive
    assert draw_pairs(sets, per_example=6, seed=3) == pairs
    assert draw_pairs(sets, per_example=6, seed=4) != pairs


def test_multi_label_rows_become_label_sets_and_pairs_share_a_label() -> None:
    # Rows of a 0/1 label matrix (N, L), as a multi-label task prepares them; a row with no label is its own set.
    rows = [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    sets = label_sets(rows)
    assert sets[0] == {0, 2} and sets[2] == {1} and sets[4] == sets[5]
    assert jaccard(sets[0], sets[1]) == 0.5 and jaccard(sets[0], sets[3]) == pytest.approx(1 / 3)
    check_pairable(sets, ["a", "b", "c"], "data.train")
    for pair in draw_pairs(sets, per_example=4, seed=0):
        shared = sets[pair.first] & sets[pair.second]
        assert pair.similarity == (jaccard(sets[pair.first], sets[pair.second]) if shared else 0.0)


def test_a_label_with_one_example_cannot_make_same_label_pairs() -> None:
    with pytest.raises(UserError, match=r"only one example labelled 'pos'.*at least 2 of each label"):
        check_pairable(label_sets([0, 0, 1]), ["neg", "pos"], "data.train")
    with pytest.raises(UserError, match="no different-class pairs"):
        check_pairable(label_sets([[1, 1], [1, 0], [0, 1]]), ["a", "b"], "data.train")


def test_the_losses_reward_what_they_should() -> None:
    target = torch.tensor([1.0, 0.0])
    right, wrong = torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])
    for loss in (cosine_loss, margin_loss):
        assert loss(right, target, 0.5) < loss(wrong, target, 0.5)
    # The margin loss ignores other-label pairs already pushed past the margin (cosine distance 1 - s > 0.5).
    assert margin_loss(torch.tensor([0.2]), torch.tensor([0.0]), 0.5) == 0.0


def test_pair_batches_encode_each_sentence_once_and_index_the_pairs(tiny_models: dict[str, Path]) -> None:
    import datasets
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    texts = ["good", "very bad film", "fine", "dull"]
    split = datasets.Dataset.from_dict(dict(tokenizer(texts)))
    dataset = PairDataset(split, draw_pairs(label_sets([0, 1, 0, 1]), per_example=4, seed=0))
    items = [dataset[i] for i in range(8)]  # 8 pairs over 4 sentences: 16 texts, at most 4 distinct
    batch = PairCollator(tokenizer)(items)
    pairs = dataset.pairs[:8]
    distinct = list(dict.fromkeys(row for p in pairs for row in (p.first, p.second)))
    assert batch["input_ids"].shape[0] == len(distinct) <= 4 and batch["labels"].tolist() == [
        p.similarity for p in pairs
    ]
    for pair, first, second in zip(pairs, batch["first_index"], batch["second_index"], strict=True):
        for row, at in ((pair.first, first), (pair.second, second)):
            ids = split[row]["input_ids"]
            assert batch["input_ids"][at].tolist()[: len(ids)] == ids

    # The loss is the one of encoding all 16 texts (dropout off): sharing a sentence's embedding changes no number.
    encoder = PairEncoder(AutoModel.from_pretrained(tiny_models["bert"]), "mean", "cosine", 0.5).eval()
    output = encoder(**batch)
    every = dict(tokenizer.pad([split[p.first] for p in pairs] + [split[p.second] for p in pairs], return_tensors="pt"))
    count = torch.arange(len(pairs))
    one_by_one = encoder(**every, first_index=count, second_index=count + len(pairs), labels=batch["labels"])
    assert output.logits.shape == (8,) and torch.isfinite(output.loss)
    torch.testing.assert_close(output.logits, one_by_one.logits)
    torch.testing.assert_close(output.loss, one_by_one.loss)


# ---- a run --------------------------------------------------------------------------------------------------------


def fewshot_recipe(tmp_path: Path, model: Path, **method: object) -> Path:
    data = write_sentiment_csv(tmp_path / "sentiment.csv", copies=6)
    return write_recipe(
        tmp_path,
        model,
        data,
        method={"name": "contrastive", "pairs_per_example": 8, "head_epochs": 4, "learning_rate": 1e-3, **method},
        data={"max_train_per_class": 6, "eval": str(data)},
        train={"batch_size": 8, "epochs": 1, "learning_rate": 1e-3, "seed": 3},
    )


def test_contrastive_trains_the_encoder_then_the_head_and_predict_reads_it_back(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    before = load_file(str(tiny_models["bert"] / "model.safetensors"))
    setup, run_dir = train_in_process(fewshot_recipe(tmp_path, tiny_models["bert"]))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics["phases"]) == ["embeddings", "head"]
    embeddings = metrics["phases"]["embeddings"]["train"]
    assert embeddings["pairs"] == 12 * 8 and embeddings["same_label_pairs"] == 12 * 4  # 6 per class, 2 classes
    assert metrics["phases"]["embeddings"]["eval"] == {}  # pairs have no task metric; the head phase evaluates
    assert 0.0 <= metrics["eval"]["eval_accuracy"] <= 1.0
    assert metrics["train"]["method"] == "contrastive"
    assert metrics["train"]["trainable_parameters"] == metrics["train"]["total_parameters"]  # encoder, then head

    after = load_file(str(run_dir / "model.safetensors"))
    for key in ("bert.encoder.layer.0.attention.self.query.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert not torch.equal(before[key], after[key]), f"{key} did not train"
    assert json.loads((run_dir / "probe.json").read_text()) == {"pooling": "mean", "layer": -1, "normalize": True}

    # predict rebuilds exactly the trained model: mean pooling, unit length, the trained head.
    tokenizer, _ = head_inputs(run_dir)
    expected = logits_of(setup.model, tokenizer)
    predictor = open_predictor(run_dir, runtime=Runtime.choose("cpu", "fp32"))  # as logits_of computes them
    loaded = torch.cat(list(predictor.logits(TEXTS)))  # type: ignore[attr-defined]
    assert torch.allclose(loaded, expected, atol=1e-5)
    labels = [row["label"] for row in predictor.predict(TEXTS)]
    assert labels == [["negative", "positive"][i] for i in expected.argmax(-1).tolist()]


def test_contrastive_run_folder_evaluates_and_exports_like_any_run(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    recipe = fewshot_recipe(tmp_path, tiny_models["bert"], loss="contrastive", normalize=False, pooling="cls")
    ran = invoke("run", recipe)
    assert ran.exit_code == 0, ran.output
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "probe.json").read_text()) == {"pooling": "cls", "layer": -1}
    metrics = json.loads((run_dir / "metrics.json").read_text())

    evaluated = invoke("evaluate", run_dir, "--data", tmp_path / "sentiment.csv", "--out", tmp_path / "eval.json")
    assert evaluated.exit_code == 0, evaluated.output
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["metrics"]["accuracy"] == pytest.approx(metrics["eval"]["eval_accuracy"])

    exported = invoke("export", run_dir, "--out", tmp_path / "shipped")
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "shipped" / "probe.json").is_file()
    first = list(open_predictor(run_dir).predict(TEXTS))
    assert list(open_predictor(tmp_path / "shipped").predict(TEXTS)) == first


@pytest.mark.parametrize("architecture", ["distilbert", "roberta", "gpt2"])
def test_contrastive_runs_on_every_architecture(
    architecture: str, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    _, run_dir = train_in_process(fewshot_recipe(tmp_path, tiny_models[architecture], pooling="native"))
    assert (run_dir / "probe.json").is_file() and (run_dir / "run_status.json").is_file()
    assert len(list(open_predictor(run_dir).predict(TEXTS))) == len(TEXTS)


def test_too_few_examples_for_pairs_is_one_line_and_writes_nothing(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "tiny.csv"
    data.write_text("text,label\ngood film,positive\nbad film,negative\nawful film,negative\n", encoding="utf-8")
    recipe = write_recipe(tmp_path, tiny_models["bert"], data, method={"name": "contrastive"}, data={"eval": str(data)})
    user_error(invoke("run", recipe), "method contrastive", "'positive'", "at least 2 of each label")
    assert not (tmp_path / "run").exists()


# ---- few-shot subsets -----------------------------------------------------------------------------------------


def test_max_train_per_class_is_a_seeded_balanced_subset(tmp_path: Path) -> None:
    path = write_sentiment_csv(tmp_path / "s.csv", copies=8)  # 48 positive, 48 negative

    def load(seed: int) -> list[str]:
        spec = DataSpec.model_validate({"train": str(path), "eval": str(path), "max_train_per_class": 5})
        loaded = load_data(spec, label_column="label", seed=seed, data_root=None, base_dir=tmp_path)
        assert any("5 rows of each of 2 labels" in note for note in loaded.notes)
        assert Counter(loaded.splits["train"]["label"]) == {"positive": 5, "negative": 5}
        return list(loaded.splits["train"]["text"])

    assert load(0) == load(0) and load(0) != load(1)
    with pytest.raises(ValueError, match="max_train_per_class both take a subset"):
        DataSpec.model_validate({"train": str(path), "max_train_samples": 4, "max_train_per_class": 2})


@pytest.mark.heavy  # over 20 s of tiny-model training: make test runs it, make test-fast does not
def test_compare_includes_contrastive_on_class_balanced_few_shot_sets(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    data = write_sentiment_csv(tmp_path / "sentiment.csv", copies=6)
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], data, data={"eval": str(data)}, train={"epochs": 2, "batch_size": 8}
    )
    out = tmp_path / "cmp"
    # The recipe's method is full, so contrastive runs with its defaults (40 pairs per example).
    args = ["compare", recipe, "--methods", "probe,contrastive", "--train-sizes", "4", "--per-class"]
    result = invoke(*args, "--output-dir", out)
    assert result.exit_code == 0, result.output
    cells = json.loads((out / "compare.json").read_text())["cells"]
    assert {(c["method"], c["train_size"]) for c in cells} == {("probe", 4), ("contrastive", 4)}
    contrastive = [c for c in cells if c["method"] == "contrastive"]
    assert all(c["head_learning_rate"] == 1e-2 and c["learning_rate"] == 2e-5 for c in contrastive)
    assert all(c["trainable_parameters"] == c["total_parameters"] for c in contrastive)
    report = (out / "compare.md").read_text()
    assert "| method | train examples per class |" in report and "| contrastive | 4 |" in report
    assert "2e-05 then head 0.01" in report and "- 4 examples per class:" in report
    user_error(invoke(*args[:-1], "--output-dir", out), "per-class", "--output-dir")  # the same folder, other mode


@pytest.mark.subprocess
def test_a_contrastive_run_killed_in_phase_embeddings_resumes_to_the_uninterrupted_metrics(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    from tests.unit.test_reliability import metrics_of, ok, start_and_stop

    def recipe(folder: Path) -> Path:
        folder.mkdir()
        return fewshot_recipe(folder, tiny_models["bert"], pairs_per_example=20)

    straight, killed = recipe(tmp_path / "straight"), recipe(tmp_path / "killed")
    for path in (straight, killed):
        raw = yaml.safe_load(path.read_text())
        raw["train"]["checkpoint_steps"] = 5  # 12 examples x 20 pairs / batch 8 = 30 steps in phase embeddings
        path.write_text(yaml.safe_dump(raw))
    ok("run", straight)
    start_and_stop(killed, "embeddings", signal.SIGKILL, at_step=5)
    ok("run", killed, "--resume")
    run = tmp_path / "killed" / "run"
    assert "resume: from" in (run / "run.log").read_text(encoding="utf-8")
    assert metrics_of(run) == metrics_of(tmp_path / "straight" / "run")
