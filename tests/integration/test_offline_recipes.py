"""Every shipped recipe that runs offline resolves its model and real data and prepares them (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp_transfer.pipeline import RunOptions, prepare_run
from nlp_transfer.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
SMALL = ["data.max_train_samples=64", "data.max_eval_samples=64", "data.max_test_samples=64"]

pytestmark = pytest.mark.integration

# recipe -> the label names its real data must produce
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
}


def test_the_offline_list_covers_every_offline_recipe() -> None:
    offline = {
        p.name for p in (REPO / "recipes").glob("*.yaml") if "all-MiniLM-L6-v2" in load_recipe(p).recipe.model.name
    }
    assert offline == set(OFFLINE)


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_recipe_prepares_real_data(name: str, minilm: Path) -> None:
    setup = prepare_run(load_recipe(REPO / "recipes" / name, SMALL), RunOptions())
    assert setup.model_asset.source == "mirror"
    assert setup.prepared.label_names == OFFLINE[name]
    for split in setup.prepared.splits.values():
        # QA splits hold windows: a long context gives several for one question.
        questions = len(set(split["question_index"])) if "question_index" in split.column_names else len(split)
        assert 0 < questions <= 64 and len(split) >= questions
        assert max(len(ids) for ids in split["input_ids"]) <= setup.loaded.recipe.task.max_length
