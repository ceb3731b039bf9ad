"""Domain adaptation on tiny models: stage order, the unlabelled corpus, packing, the masked-positions loss,
pseudo-label selection, the chain (reuse, labels never reaching training) and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import TargetDomain
from nlp_transfer.studies.adapt.corpus import load_corpus, pack_blocks
from nlp_transfer.studies.adapt.pretrain import MLM_HEADS, masked_positions_loss, pick_objective
from nlp_transfer.studies.adapt.selftrain import select_pseudo_labels
from tests.conftest import DATA_ROOT, invoke, user_error

ELECTRONICS = DATA_ROOT / "amazon_mds" / "electronics"


def _rows(path: Path, n: int) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:n]]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _adapt_recipe(
    tmp: Path,
    model: Path,
    source: Path,
    corpus: Path,
    stages: list[dict],
    label_shift: dict | None = None,
    **adapt: object,
) -> Path:
    test = _jsonl(tmp / "target_test.jsonl", _rows(ELECTRONICS / "test.jsonl", 30))
    recipe = {
        "model": {"name": str(model)},
        "task": {"name": "classification", "labels": ["negative", "positive"], "max_length": 32},
        "data": {"train": str(source)},
        # fp32: the chains compare their stages' numbers exactly (bf16 autocast is the default on bf16 CPUs)
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "seed": 0,
            "logging_steps": 5,
            "precision": "fp32",
        },
        "adapt": {
            "target": {"corpus": str(corpus), "test": str(test), **adapt},
            "stages": stages,
            # The corpora here are tiny (20-40 texts): let the target prior be estimated from them anyway.
            "label_shift": label_shift or {"min_corpus_texts": 10},
        },
    }
    path = tmp / "adapt.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


# ---- recipe -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "fragment"),
    [
        ([{"name": "finetune"}, {"name": "pretrain"}], "'pretrain' comes after 'finetune'"),
        ([{"name": "self_train"}], "add {name: finetune} before it"),
        ([{"name": "finetune"}, {"name": "finetune"}], "'finetune' appears 2 times"),
        ([{"name": "pretrain", "blocksize": 64}, {"name": "finetune"}], "did you mean 'block_size'"),
    ],
)
def test_stage_list_errors_name_the_fix(tmp_path: Path, sentiment_csv: Path, stages: list, fragment: str) -> None:
    recipe = _adapt_recipe(tmp_path, Path("unused"), sentiment_csv, tmp_path / "corpus.jsonl", stages)
    user_error(invoke("validate", recipe), "adapt.stages", fragment)


def test_overrides_reach_list_items(tmp_path: Path, sentiment_csv: Path) -> None:
    recipe = _adapt_recipe(tmp_path, Path("unused"), sentiment_csv, tmp_path / "c.jsonl", [{"name": "pretrain"}])
    shown = yaml.safe_load(invoke("show", recipe, "-o", "adapt.stages.0.block_size=64").stdout)
    assert shown["adapt"]["stages"][0]["block_size"] == 64
    user_error(invoke("show", recipe, "-o", "adapt.stages.3.epochs=2"), "list has items 0..0")


# ---- the target corpus ------------------------------------------------------------------------------------------


def test_corpus_loader_keeps_only_text(tmp_path: Path) -> None:
    corpus = load_corpus(
        TargetDomain(corpus=str(ELECTRONICS / "train.jsonl"), max_corpus_samples=50),
        seed=0,
        data_root=None,
        base_dir=None,
    )
    assert len(corpus.texts) == 50 and corpus.labels is None
    assert all(isinstance(t, str) and t for t in corpus.texts)
    assert corpus.notes == ["corpus: random subset of 50 of 1600 texts (seed 0)"]


def test_pack_blocks_fills_every_block(tiny_models: dict[str, Path]) -> None:
    texts = [row["text"] for row in _rows(ELECTRONICS / "train.jsonl", 20)]
    bert = AutoTokenizer.from_pretrained(tiny_models["bert"])
    blocks = pack_blocks(bert, texts, 64)
    assert len(blocks) > 10 and {len(b) for b in blocks} == {64}
    assert all(b[0] == bert.cls_token_id and b[-1] == bert.sep_token_id for b in blocks)
    gpt2 = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    assert {len(b) for b in pack_blocks(gpt2, texts, 64)} == {64}  # no special tokens around GPT-2 blocks
    with pytest.raises(UserError, match="too few to fill one block of 64"):
        pack_blocks(bert, ["too short"], 64)


# ---- continued pre-training -------------------------------------------------------------------------------------


def test_objective_follows_the_architecture(tiny_models: dict[str, Path]) -> None:
    def pick(name: str, requested: str = "auto") -> str:
        folder = tiny_models[name]
        config = AutoConfig.from_pretrained(folder)
        return pick_objective(config, requested, AutoTokenizer.from_pretrained(folder), name)

    assert [pick(n) for n in ("bert", "distilbert", "roberta", "gpt2")] == ["mlm", "mlm", "mlm", "clm"]
    with pytest.raises(UserError, match=r"objective 'mlm' is not possible .* set objective to clm"):
        pick("gpt2", "mlm")
    with pytest.raises(UserError, match="no masked-LM or causal-LM head"):
        pick_objective(AutoConfig.for_model("vit"), "auto", AutoTokenizer.from_pretrained(tiny_models["bert"]), "vit")


@pytest.mark.parametrize("architecture", sorted(MLM_HEADS))
def test_masked_positions_loss_equals_the_models_own(tiny_models: dict[str, Path], architecture: str) -> None:
    """The speed lever must not change the objective: same loss as the model's forward over every position."""
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(tiny_models[architecture]).eval()
    input_ids = torch.randint(5, 100, (3, 16))
    labels = torch.full_like(input_ids, -100)
    labels[:, ::4] = input_ids[:, ::4]
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    expected = model(**inputs, labels=labels).loss
    got = masked_positions_loss(MLM_HEADS[architecture])(model, {**inputs, "labels": labels}, False)
    assert torch.allclose(got, expected, atol=1e-6)


# ---- pseudo-labels ----------------------------------------------------------------------------------------------


def test_balanced_pseudo_labels_correct_a_shifted_prior() -> None:
    # The model calls 8 of 10 texts negative, but texts 6-9 are its most positive: balanced takes 2 per class.
    positive = np.array([0.1, 0.2, 0.05, 0.3, 0.15, 0.25, 0.45, 0.48, 0.6, 0.9])
    probabilities = np.stack([1 - positive, positive], axis=1)
    uniform = np.array([0.5, 0.5])
    chosen = select_pseudo_labels(probabilities, 4, shares=uniform, min_confidence=0.0)
    assert [(p.index, p.label) for p in chosen] == [(0, 0), (2, 0), (8, 1), (9, 1)]
    by_argmax = select_pseudo_labels(probabilities, 4, shares=None, min_confidence=0.0)
    assert [(p.index, p.label) for p in by_argmax] == [(0, 0), (2, 0), (4, 0), (9, 1)]
    confident = select_pseudo_labels(probabilities, 4, shares=uniform, min_confidence=0.85)
    assert [(p.index, p.label) for p in confident] == [(0, 0), (2, 0), (9, 1)]


def test_balanced_pseudo_labels_never_give_a_text_two_labels() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=50)
    chosen = select_pseudo_labels(probabilities, 30, shares=np.full(3, 1 / 3), min_confidence=0.0)
    assert len({p.index for p in chosen}) == len(chosen) == 30
    assert np.bincount([p.label for p in chosen]).tolist() == [10, 10, 10]


# ---- the chain --------------------------------------------------------------------------------------------------


def _stage_record(out: Path, chain: str) -> dict:
    return json.loads((out / "stages" / chain / "stage.json").read_text(encoding="utf-8"))


@pytest.mark.heavy  # over 20 s of tiny-model training: make test runs it, make test-fast does not
def test_adapt_table_and_reuse(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    corpus = _jsonl(tmp_path / "corpus.jsonl", _rows(ELECTRONICS / "train.jsonl", 40))
    stages = [
        {"name": "pretrain", "block_size": 32, "max_steps": 2, "batch_size": 8},
        {"name": "finetune"},
        {"name": "self_train", "rounds": 2, "keep_fraction": 0.5, "balanced": True},  # as older recipes say it
    ]
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, stages)
    out = tmp_path / "out"
    result = invoke("adapt", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output
    table = json.loads((out / "adapt_table.json").read_text(encoding="utf-8"))["rows"]
    assert [r["row"] for r in table] == ["source-only", "+continued pre-training", "+self-training", "both"]
    for row in table:
        assert 0 <= row["target_accuracy"] <= 1 and 0 <= row["source_accuracy"] <= 1
        assert 0 <= row["target_entropy"] <= 1 and abs(sum(row["target_predicted_shares"].values()) - 1) < 1e-3
    assert "| source-only |" in (out / "adapt_table.md").read_text(encoding="utf-8")
    # Chains share their common stages: five stage folders for four rows (finetune serves two of them).
    assert sorted(p.name for p in (out / "stages").iterdir()) == [
        "finetune",
        "finetune+self_train",
        "pretrain",
        "pretrain+finetune",
        "pretrain+finetune+self_train",
    ]
    assert all(row["reused"] == [] for row in table)
    rounds = _stage_record(out, "finetune+self_train")["metrics"]["rounds"]
    assert [r["pseudo_labels"] for r in rounds] == [10, 20]  # keep_fraction 0.5 of 40: 1/2 of it, then all of it
    assert all(set(r["pseudo_label_shares"].values()) == {0.5} for r in rounds)  # balanced: true = uniform
    assert {r["proportions"] for r in rounds} == {"uniform"}
    # The adapted encoder loads as a classifier, and BERT's pooler kept the checkpoint's weights.
    adapted = AutoModelForSequenceClassification.from_pretrained(out / "stages" / "pretrain")
    original = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"])
    assert torch.equal(adapted.bert.pooler.dense.weight, original.bert.pooler.dense.weight)
    assert not torch.equal(
        adapted.bert.encoder.layer[0].attention.self.query.weight,
        original.bert.encoder.layer[0].attention.self.query.weight,
    )

    # Again: nothing retrains. With another self_train setting: only the self_train stages do.
    before = {c: _stage_record(out, c) for c in ("pretrain", "finetune", "pretrain+finetune")}
    again = invoke("adapt", recipe, "--output-dir", out, "-o", "adapt.stages.2.rounds=1")
    assert again.exit_code == 0, again.output
    table = json.loads((out / "adapt_table.json").read_text(encoding="utf-8"))["rows"]
    assert table[3]["reused"] == ["pretrain", "finetune"] and table[0]["reused"] == ["finetune"]
    assert {c: _stage_record(out, c) for c in before} == before
    assert len(_stage_record(out, "finetune+self_train")["metrics"]["rounds"]) == 1


@pytest.mark.heavy  # over 20 s of tiny-model training: make test runs it, make test-fast does not
def test_target_labels_never_reach_training(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The same corpus with its true labels, with every label flipped, and with no label column: identical
    estimated priors, identical pseudo-labels and identical models."""
    source, corpus, _ = _keyword_data(tmp_path, 0.7)
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    rows = [{"text": text, "label": int(i < 140)} for i, text in enumerate(texts)]  # _keyword_data's labels
    variants = {
        "true": rows,
        "flipped": [{**r, "label": 1 - r["label"], "rating": 0} for r in rows],
        "none": [{"text": r["text"]} for r in rows],
    }
    stages = [
        {"name": "finetune"},
        {"name": "self_train", "rounds": 1, "keep_fraction": 0.5, "proportions": "estimated"},
    ]
    outputs = {}
    for name, corpus_rows in variants.items():
        folder = tmp_path / name
        folder.mkdir()
        corpus = _jsonl(folder / "corpus.jsonl", corpus_rows)
        recipe = _adapt_recipe(folder, tiny_models["bert"], source, corpus, stages)
        result = invoke("run", recipe, "--output-dir", folder / "out", *LEARNS)
        assert result.exit_code == 0, result.output
        stage = folder / "out" / "stages" / "finetune+self_train"
        (round1,) = _stage_record(folder / "out", "finetune+self_train")["metrics"]["rounds"]
        outputs[name] = (
            round1["pseudo_label_target_shares"],
            (stage / "pseudo_labels-round1.jsonl").read_text(encoding="utf-8"),
            (stage / "round1" / "model.safetensors").read_bytes(),
        )
    assert outputs["true"] == outputs["flipped"] == outputs["none"]


def test_gpt2_and_lora_pretraining(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    corpus = _jsonl(tmp_path / "corpus.jsonl", _rows(ELECTRONICS / "train.jsonl", 20))
    for model, method in (("gpt2", "full"), ("roberta", "lora")):
        stages = [{"name": "pretrain", "block_size": 32, "max_steps": 2, "batch_size": 4, "method": method}]
        recipe = _adapt_recipe(tmp_path, tiny_models[model], sentiment_csv, corpus, stages)
        out = tmp_path / f"out-{model}"
        result = invoke("run", recipe, "--output-dir", out)
        assert result.exit_code == 0, result.output
        metrics = _stage_record(out, "pretrain")["metrics"]
        assert metrics["objective"] == {"gpt2": "clm", "roberta": "mlm"}[model]
        assert metrics["lm_eval_loss_after"] < metrics["lm_eval_loss_before"] + 1.0
        AutoModelForSequenceClassification.from_pretrained(out / "stages" / "pretrain")  # a plain model folder


def _keyword_data(
    folder: Path, positive_share: float, target_filler: list[str] | None = None
) -> tuple[Path, Path, Path]:
    """Texts a tiny model can learn in seconds (one sentiment word among filler words): a balanced labelled source,
    and a target corpus and test set with `positive_share` positive texts (their filler words `target_filler`, when
    given: a target that reads unlike the source)."""
    rng = np.random.default_rng(0)
    filler = [
        "the",
        "a",
        "it",
        "was",
        "this",
        "product",
        "box",
        "item",
        "very",
        "quite",
        "really",
        "and",
        "but",
        "with",
        "for",
    ]
    words = {0: ["terrible", "awful", "broken"], 1: ["excellent", "wonderful", "great"]}

    def text(label: int, words_around: list[str] = filler) -> str:
        chosen = list(rng.choice(words_around, size=6))
        chosen.insert(int(rng.integers(7)), str(rng.choice(words[label])))
        return " ".join(chosen)

    source = folder / "source.csv"
    source.write_text(
        "text,label\n" + "".join(f"{text(i % 2)},{['negative', 'positive'][i % 2]}\n" for i in range(120))
    )
    around = target_filler or filler
    target = [int(i < positive_share * 200) for i in range(200)]
    corpus = _jsonl(folder / "corpus.jsonl", [{"text": text(label, around)} for label in target])
    test = _jsonl(folder / "test.jsonl", [{"text": text(label, around), "label": label} for label in target[::2]])
    return source, corpus, test


LEARNS = [
    "-o",
    "train.epochs=15",
    "-o",
    "train.learning_rate=1e-3",
    "-o",
    "train.precision=fp32",
]  # a tiny model learns keyword data; fp32 keeps the toy estimates exact


# Every stage that uses the estimated target prior: pseudo-labels in its proportions, and its correction.
ESTIMATING_CHAIN = [
    {"name": "finetune"},
    {"name": "self_train", "rounds": 1, "keep_fraction": 0.5, "proportions": "estimated"},
    {"name": "prior_correction"},
]


@pytest.mark.heavy  # over 20 s of tiny-model training: make test runs it, make test-fast does not
def test_prior_correction_and_estimated_proportions(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """On a 70%-positive target the estimated prior sets the pseudo-labels' proportions and corrects the final
    models; the corrected folder is a complete run whose predictions carry the correction; the table shows the
    estimate beside the predicted shares."""
    source, corpus, test = _keyword_data(tmp_path, 0.7)
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], source, corpus, ESTIMATING_CHAIN, test=str(test))
    out = tmp_path / "out"
    result = invoke("adapt", recipe, "--output-dir", out, *LEARNS)
    assert result.exit_code == 0, result.output
    table = json.loads((out / "adapt_table.json").read_text(encoding="utf-8"))["rows"]
    rows = ["source-only", "+prior correction", "+self-training", "+self-training +prior correction"]
    assert [r["row"] for r in table] == rows
    source_only = _stage_record(out, "finetune")["metrics"]
    estimated = source_only["target_estimated_prior"]
    # Both estimators find the 70% prior from the source-only model's posteriors at least as well as its predicted
    # share does, and the self-trained model (pseudo-labels in the estimated proportions) estimates it too.
    predicted = source_only["target_predicted_shares"]["positive"]
    assert abs(estimated["positive"] - 0.7) <= max(abs(predicted - 0.7), 0.03)
    assert source_only["target_prior_cross_check"]["bbse"]["positive"] == pytest.approx(0.7, abs=0.05)
    # The self-trained model's own estimate leans the same way (on 12 toy eval rows it is rough: 0.59 to 0.70 seen).
    assert table[2]["target_estimated_prior"]["positive"] > 0.55
    assert table[1]["target_accuracy"] >= table[0]["target_accuracy"]  # the correction never costs here
    # Round 1's pseudo-labels come in the proportions estimated from its teacher (the source-only model).
    (round1,) = _stage_record(out, "finetune+self_train")["metrics"]["rounds"]
    assert round1["proportions"] == "estimated" and round1["pseudo_label_target_shares"] == pytest.approx(estimated)
    assert round1["pseudo_labels"] == 100 and round1["pseudo_label_shares"]["positive"] == pytest.approx(
        estimated["positive"], abs=0.01
    )
    # The corrected source-only model: a complete run folder with label_prior.json; predict applies it.
    corrected = out / "stages" / "finetune+prior_correction"
    record = json.loads((corrected / "label_prior.json").read_text(encoding="utf-8"))
    assert record["labels"] == ["negative", "positive"] and record["target_prior"] == pytest.approx(estimated)
    assert record["corrects"] == str(out / "stages" / "finetune") and record["converged"]
    texts = ["the box was quite excellent", "it was broken and the item very"]
    plain = [json.loads(line) for line in invoke("predict", out / "stages" / "finetune", *texts).stdout.splitlines()]
    fixed = [json.loads(line) for line in invoke("predict", corrected, *texts).stdout.splitlines()]
    for before, after in zip(plain, fixed, strict=True):
        z = np.log([before["probabilities"]["negative"], before["probabilities"]["positive"]])
        z = z * record["logit_scale"] + np.asarray(record["logit_bias"])
        expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert after["probabilities"]["positive"] == pytest.approx(float(expected[1]), abs=1e-3)
    metrics = json.loads((corrected / "metrics.json").read_text(encoding="utf-8"))
    assert "eval_before_prior_correction" in metrics
    assert table[1]["source_accuracy"] == metrics["eval"]["eval_accuracy"]
    assert "label_prior.json" in (corrected / "README.md").read_text(encoding="utf-8")
    markdown = (out / "adapt_table.md").read_text(encoding="utf-8")
    assert "target prior, estimated (cross-check)" in markdown and "(bbse: 30% / 70%)" in markdown


@pytest.mark.heavy  # tiny-model training: make test runs it, make test-fast does not
def test_a_target_that_reads_unlike_the_source_is_not_corrected(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """Target texts with other words around the sentiment word: the label-shift test rejects the estimate before
    training, says so on the terminal and in the table, and no stage uses it (shift_test: require); with
    shift_test: report the same estimate is applied."""
    other = ["order", "shipping", "seller", "delivered", "package", "refund", "warranty", "cable", "battery", "screen"]
    source, corpus, test = _keyword_data(tmp_path, 0.7, target_filler=other)
    evaluation = tmp_path / "eval.csv"  # 60 source texts: enough for the test (shift_test.MIN_TEXTS is 50)
    rows = source.read_text(encoding="utf-8").splitlines()
    evaluation.write_text("\n".join(rows[:61]) + "\n", encoding="utf-8")  # the header and 60 rows
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], source, corpus, ESTIMATING_CHAIN, test=str(test))
    out = tmp_path / "out"
    result = invoke("adapt", recipe, "--output-dir", out, "-o", f"data.eval={evaluation}", *LEARNS)
    assert result.exit_code == 0, result.output
    assert "warning: adapt.target.corpus: a word-level classifier tells the target corpus from" in result.output
    assert "will be reported but not used" in result.output
    table = json.loads((out / "adapt_table.json").read_text(encoding="utf-8"))["rows"]
    tested = table[0]["label_shift_test"]
    assert tested["rejects_label_shift"] and tested["domain_classifier_accuracy"] > tested["label_shift_bound"]
    # Not corrected: no label_prior.json, the same predictions as the classifier it copies, the reason recorded.
    corrected = out / "stages" / "finetune+prior_correction"
    assert not (corrected / "label_prior.json").exists()
    assert table[1]["target_accuracy"] == table[0]["target_accuracy"]
    assert table[1]["target_predicted_shares"] == table[0]["target_predicted_shares"]
    record = json.loads((corrected / "metrics.json").read_text(encoding="utf-8"))["prior_correction"]
    assert record["applied"] is False and "label shift does not hold" in record["why"]
    assert record["shift_test"] == tested and 0 < record["target_prior"]["positive"] < 1
    assert any(w.startswith("not corrected: label shift does not hold") for w in table[1]["warnings"])
    # Self-training asked for estimated proportions and took uniform ones, saying why.
    (round1,) = _stage_record(out, "finetune+self_train")["metrics"]["rounds"]
    assert round1["proportions"].startswith("uniform: the estimate is not used, label shift does not hold")
    assert round1["pseudo_label_shares"] == {"negative": 0.5, "positive": 0.5}
    assert "Label-shift test: REJECTED" in (out / "adapt_table.md").read_text(encoding="utf-8")
    # shift_test: report applies the very estimate the test doubted (the same source-only model: same seed, data).
    (tmp_path / "report").mkdir()
    correct = [{"name": "finetune"}, {"name": "prior_correction"}]
    recipe = _adapt_recipe(tmp_path / "report", tiny_models["bert"], source, corpus, correct, test=str(test))
    overrides = ["-o", f"data.eval={evaluation}", "-o", "adapt.label_shift.shift_test=report", *LEARNS]
    report = invoke("run", recipe, "--output-dir", tmp_path / "report" / "out", *overrides)
    assert report.exit_code == 0, report.output
    assert "is used anyway" in report.output
    folder = tmp_path / "report" / "out" / "stages" / "finetune+prior_correction"
    applied = json.loads((folder / "label_prior.json").read_text(encoding="utf-8"))
    assert applied["target_prior"] == pytest.approx(table[0]["target_estimated_prior"])
    assert applied["shift_test"] == tested


def test_the_table_warns_when_the_threshold_does_not_fit_the_target() -> None:
    from nlp_transfer.recipe import LabelShiftSpec
    from nlp_transfer.studies.adapt.label_shift import estimate_prior
    from nlp_transfer.studies.adapt.signals import prior_warnings

    rng = np.random.default_rng(0)
    source_labels = np.arange(2000) % 2
    target_labels = (rng.uniform(size=2000) < 0.75).astype(int)

    def logits(labels: np.ndarray) -> np.ndarray:
        margin = np.where(labels == 1, 1.5, -1.5) + rng.normal(size=len(labels))
        return np.stack([np.zeros(len(labels)), margin], axis=1)

    estimate = estimate_prior(
        LabelShiftSpec(), ["negative", "positive"], logits(source_labels), source_labels, logits(target_labels)
    )
    assert estimate.prior[1] == pytest.approx(0.75, abs=0.04)
    leaning = prior_warnings(estimate, {"negative": 0.5, "positive": 0.5}, 0.1)
    assert len(leaning) == 1 and "predicts negative for 50% of the corpus, but the estimated prior is 25%" in leaning[0]
    assert prior_warnings(estimate, {"negative": 0.3, "positive": 0.7}, 0.1) == []
    estimate.cross_check["bbse"] = np.array([0.5, 0.5])
    assert "the em and bbse estimates of negative differ (25% vs 50%)" in " ".join(
        prior_warnings(estimate, {"negative": 0.3, "positive": 0.7}, 0.1)
    )


def test_an_edited_corpus_trains_its_stages_again(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    """Reuse keys on the data files' contents, not their names: a corpus edited in place is a new input."""
    rows = _rows(ELECTRONICS / "train.jsonl", 30)
    corpus = _jsonl(tmp_path / "corpus.jsonl", rows)
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, [{"name": "finetune"}])
    out = tmp_path / "out"
    assert invoke("run", recipe, "--output-dir", out).exit_code == 0
    first = _stage_record(out, "finetune")
    assert invoke("run", recipe, "--output-dir", out).exit_code == 0
    assert _stage_record(out, "finetune") == first  # same contents: reused, not trained again
    _jsonl(corpus, [*rows[:-1], {"text": "An edited review: the kettle leaks."}])  # same file, new contents
    result = invoke("run", recipe, "--output-dir", out)
    assert result.exit_code == 0, result.output
    again = _stage_record(out, "finetune")
    assert again["inputs_hash"] != first["inputs_hash"] and again["seconds"] > 0
    assert json.loads((out / "adapt_table.json").read_text(encoding="utf-8"))["rows"][0]["reused"] == []


# ---- bad input --------------------------------------------------------------------------------------------------


def test_bad_corpora_and_models(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    pretrain = [{"name": "pretrain", "block_size": 512}, {"name": "finetune"}]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, empty, pretrain)
    user_error(invoke("run", recipe, "--output-dir", tmp_path / "o1"), "adapt.target.corpus", "is empty")
    short = _jsonl(tmp_path / "short.jsonl", [{"text": "great kettle"}, {"text": "broke in a week"}])
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, short, pretrain)
    user_error(invoke("run", recipe, "--output-dir", tmp_path / "o2"), "too few to fill one block of 512", "block_size")
    unnamed = _jsonl(tmp_path / "review.jsonl", [{"review": "fine"}])
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, unnamed, pretrain)
    user_error(invoke("run", recipe, "--output-dir", tmp_path / "o3"), "column 'text' (adapt.target.text) not found")

    # A model type with no masked-LM or causal-LM head in transformers (a vision model's config).
    vit = tmp_path / "vit"
    vit.mkdir()
    AutoConfig.for_model("vit").save_pretrained(vit)
    AutoTokenizer.from_pretrained(tiny_models["bert"]).save_pretrained(vit)
    recipe = _adapt_recipe(
        tmp_path, vit, sentiment_csv, _jsonl(tmp_path / "c.jsonl", _rows(ELECTRONICS / "train.jsonl", 5)), pretrain
    )
    user_error(invoke("run", recipe, "--output-dir", tmp_path / "o4"), "no masked-LM or causal-LM head")

    # Never written into a folder that is not ours.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    user_error(invoke("adapt", recipe, "--output-dir", foreign), "not an nlp-transfer adapt folder")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_estimation_needs_enough_corpus_and_every_class_before_training(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    corpus = _jsonl(tmp_path / "corpus.jsonl", _rows(ELECTRONICS / "train.jsonl", 30))
    correct = [{"name": "finetune"}, {"name": "prior_correction"}]
    small = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, correct, {"min_corpus_texts": 100})
    user_error(invoke("adapt", small, "--output-dir", tmp_path / "o1"), "30 texts are too few", "min_corpus_texts")
    assert not (tmp_path / "o1").exists()  # refused before anything was trained or written
    estimated = [{"name": "finetune"}, {"name": "self_train", "rounds": 1, "proportions": "estimated"}]
    small = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, estimated, {"min_corpus_texts": 100})
    user_error(invoke("run", small, "--output-dir", tmp_path / "o2"), "too few to estimate", "proportions: estimated")
    # A source eval split with no negative example: the calibration the estimate rests on cannot be fitted.
    one_class = tmp_path / "eval.csv"
    one_class.write_text("text,label\ngreat movie,positive\nloved it,positive\n", encoding="utf-8")
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, correct)
    user_error(
        invoke("adapt", recipe, "--output-dir", tmp_path / "o3", "-o", f"data.eval={one_class}"),
        "data.eval",
        "no example of class negative",
    )
    assert not (tmp_path / "o3").exists()


def test_a_classifier_that_cannot_tell_the_classes_apart_gives_no_prior(
    tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path
) -> None:
    """An untrained-looking classifier (the tiny model after a few steps) has nearly equal posteriors everywhere:
    EM cannot settle on a prior, and the correction is refused in one line instead of applied."""
    corpus = _jsonl(tmp_path / "corpus.jsonl", _rows(ELECTRONICS / "train.jsonl", 30))
    stages = [{"name": "finetune"}, {"name": "prior_correction"}]
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, stages)
    result = invoke("adapt", recipe, "--output-dir", tmp_path / "out")
    user_error(result, "adapt.label_shift: the target prior of", "cannot be used")
    assert "did not converge" in result.output or "degenerate" in result.output
    assert not (tmp_path / "out" / "stages" / "finetune+prior_correction" / "label_prior.json").exists()


def test_self_training_with_a_lora_method(tmp_path: Path, tiny_models: dict[str, Path], sentiment_csv: Path) -> None:
    """Any method trains the classifier stages; the LoRA rounds pseudo-label with the adapter on its base."""
    corpus = _jsonl(tmp_path / "corpus.jsonl", _rows(ELECTRONICS / "train.jsonl", 30))
    stages = [{"name": "finetune"}, {"name": "self_train", "rounds": 2, "keep_fraction": 0.4, "proportions": "uniform"}]
    recipe = _adapt_recipe(tmp_path, tiny_models["bert"], sentiment_csv, corpus, stages)
    out = tmp_path / "out"
    result = invoke("run", recipe, "--output-dir", out, "-o", "method.name=lora", "-o", "method.r=4")
    assert result.exit_code == 0, result.output
    final = out / "stages" / "finetune+self_train" / "round2"
    assert (final / "adapter_config.json").is_file() and not (final / "config.json").exists()
    assert "finetune -> self_train" in result.stdout and str(final) in result.stdout
    rounds = _stage_record(out, "finetune+self_train")["metrics"]["rounds"]
    assert [r["pseudo_labels"] for r in rounds] == [6, 12]
