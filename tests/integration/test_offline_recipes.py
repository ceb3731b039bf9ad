"""Every shipped recipe that runs offline resolves its model and real data and prepares them (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp_transfer.recipe import load_recipe
from nlp_transfer.tasks.text_inputs import DOCUMENT
from nlp_transfer.train.pipeline import RunOptions, prepare_run
from tests.conftest import DATA_ROOT

REPO = Path(__file__).resolve().parents[2]
SMALL = ["data.max_train_samples=64", "data.max_eval_samples=64", "data.max_test_samples=64"]

pytestmark = pytest.mark.integration

# recipe -> the label names its real data must produce
GOEMOTIONS = (DATA_ROOT / "goemotions" / "emotions.txt").read_text(encoding="utf-8").split()
OFFLINE = {
    "quickstart.yaml": ["negative", "positive"],
    "sst2_minilm_full.yaml": ["negative", "positive"],
    "agnews_minilm.yaml": ["Business", "Sci/Tech", "Sports", "World"],
    "rt_polarity_minilm.yaml": ["negative", "positive"],
    "sst2_minilm_lora.yaml": ["negative", "positive"],
    "sst2_minilm_probe.yaml": ["negative", "positive"],
    "sst2_minilm_lpft.yaml": ["negative", "positive"],
    "squad_mini_minilm.yaml": [],  # extractive QA: no labels
    "squad_mini_minilm_lora.yaml": [],
    "movies_to_products_minilm.yaml": ["negative", "positive"],  # the source; the target test uses the same
    "sst2_minilm_fewshot.yaml": ["negative", "positive"],
    "sst2_minilm_lora_tune.yaml": ["negative", "positive"],
    "goemotions_minilm.yaml": GOEMOTIONS,  # multi-label: the names of goemotions/emotions.txt, in id order
    "emobank_minilm.yaml": ["V", "A", "D"],  # regression: the targets
    "amazon_ratings_minilm.yaml": ["rating"],
    "tweeteval_emotion_minilm.yaml": ["anger", "joy", "optimism", "sadness"],
    "imdb_windows_minilm.yaml": ["negative", "positive"],
    # token classification: O, then B-/I- of each entity type, types sorted
    "conll2003_minilm.yaml": ["O", *(f"{p}-{k}" for k in ("LOC", "MISC", "ORG", "PER") for p in "BI")],
    "conll2003_minilm_lora.yaml": ["O", *(f"{p}-{k}" for k in ("LOC", "MISC", "ORG", "PER") for p in "BI")],
    "wnut17_minilm.yaml": [
        "O",
        *(f"{p}-{k}" for k in ("corporation", "creative-work", "group", "location", "person", "product") for p in "BI"),
    ],
}


def test_the_offline_list_covers_every_offline_recipe() -> None:
    offline = {
        p.name for p in (REPO / "recipes").glob("*.yaml") if "all-MiniLM-L6-v2" in load_recipe(p).recipe.model.name
    }
    assert offline == set(OFFLINE)


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_recipe_prepares_real_data(name: str, minilm: Path) -> None:
    few_shot = load_recipe(REPO / "recipes" / name).recipe.data.max_train_per_class is not None
    small = SMALL[1:] if few_shot else SMALL  # a few-shot recipe's training set is a class-balanced handful already
    setup = prepare_run(load_recipe(REPO / "recipes" / name, small), RunOptions())
    assert setup.model_asset.source == "mirror"
    assert setup.prepared.label_names == OFFLINE[name]
    for split in setup.prepared.splits.values():
        # QA splits and text windows hold windows: a long context or review gives several rows for one example.
        found = next((c for c in ("question_index", DOCUMENT) if c in split.column_names), None)
        questions = len(set(split[found])) if found else len(split)
        assert 0 < questions <= 64 and len(split) >= questions
        assert max(len(ids) for ids in split["input_ids"]) <= setup.loaded.recipe.task.max_length


@pytest.mark.parametrize("name", [n for n in sorted(OFFLINE) if load_recipe(REPO / "recipes" / n).recipe.adapt])
def test_adapt_recipe_reads_its_target_domain(name: str) -> None:
    from nlp_transfer.studies.adapt.corpus import load_corpus, load_target_test
    from nlp_transfer.tasks.classification import gold_ids

    recipe = load_recipe(REPO / "recipes" / name).recipe
    assert recipe.adapt is not None
    corpus = load_corpus(recipe.adapt.target, seed=0, data_root=DATA_ROOT, base_dir=REPO / "recipes")
    test = load_target_test(recipe.adapt.target, seed=0, data_root=DATA_ROOT, base_dir=REPO / "recipes")
    assert len(corpus.texts) == 1600 and corpus.labels is None
    assert test is not None and test.labels is not None and len(test.texts) == 400
    ids = gold_ids(test.labels, OFFLINE[name], declared=True, where="test")
    assert set(ids.tolist()) == {0, 1}
