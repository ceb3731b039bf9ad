"""Decisions of the training engine, tested directly: which checkpoint the diagnostics say was kept (one
definition of "lower is better"); state that crosses layers is returned or recorded (the QA tokenizer's padding
side, the probe's pooling)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nlp_transfer.methods import PhaseContext
from nlp_transfer.methods.probe import Probe
from nlp_transfer.train.phases import _diagnostics


def _setup(metric: str, task: str = "qa") -> Any:
    # A task with no trivial baseline (QA): these tests are about the kept checkpoint, not the baseline verdict.
    train = SimpleNamespace(metric_for_best=metric, early_stopping_patience=None)
    recipe = SimpleNamespace(train=train, task=SimpleNamespace(name=task))
    from nlp_transfer.tasks import TASKS

    return SimpleNamespace(loaded=SimpleNamespace(recipe=recipe), prepared=None, task=TASKS[task])


def _trainer(best: str | None) -> Any:
    return SimpleNamespace(state=SimpleNamespace(best_model_checkpoint=best, max_steps=30))


@pytest.mark.parametrize(("metric", "kept_step"), [("mse", 20), ("mae", 20), ("loss", 20), ("pearson", 10)])
def test_the_kept_checkpoint_of_the_fallback_path_follows_the_metric_direction(metric: str, kept_step: int) -> None:
    """Without the Trainer's best checkpoint, the diagnostics pick the best evaluation themselves: the lowest for
    loss, mse and mae, the highest otherwise (the fallback once read every metric but the loss as higher-better)."""
    values = {10: 0.9, 20: 0.4, 30: 0.6}
    history = [{"step": s, "epoch": s / 10, "eval_loss": v, f"eval_{metric}": v} for s, v in values.items()]
    found = _diagnostics(_setup(metric), _trainer(None), history, {f"eval_{metric}": 0.6})
    assert found["kept"]["step"] == kept_step, found["kept"]


# ---- state kept in one place: returned or recorded, never changed across layers --------------------------------


def test_qa_leaves_the_tokenizer_it_is_given_alone_and_the_pipeline_loads_it_padding_right(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """Answer positions need right padding. The task says so (padding_side) and the pipeline loads the tokenizer
    that way; the task no longer flips the side of a tokenizer others share and save."""
    import shutil

    import datasets
    from transformers import AutoTokenizer

    from nlp_transfer.data.loading import LoadedData
    from nlp_transfer.recipe import QuestionAnsweringTask, load_recipe
    from nlp_transfer.tasks.qa import QuestionAnswering
    from nlp_transfer.train.pipeline import RunOptions, prepare_run
    from tests.unit.test_qa import squad_rows, write_qa_recipe

    model = tmp_path / "left-padded"
    shutil.copytree(tiny_models["bert"], model)
    left = AutoTokenizer.from_pretrained(model, padding_side="left")
    left.save_pretrained(model)  # a model whose tokenizer pads on the left by its own settings

    split = datasets.Dataset.from_list(squad_rows(4))
    data = LoadedData(splits=datasets.DatasetDict(train=split), sources={"train": ["x"]})
    with pytest.raises(ValueError, match="pads on the right"):
        QuestionAnswering(QuestionAnsweringTask(name="qa")).prepare(data, left, pad_to_max_length=False)
    assert left.padding_side == "left"  # not changed behind the caller's back

    setup = prepare_run(load_recipe(write_qa_recipe(tmp_path, model, {"name": "full"})), RunOptions())
    assert setup.tokenizer.padding_side == "right"


def test_probe_phases_read_the_prepared_model_not_state_left_by_prepare(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """phases() of a probe that never ran prepare() (or ran it for another model) plans from the model it is given:
    its pooling and layer are the PooledClassifier's own."""
    from nlp_transfer.methods.features import HeadOnFeatures, PooledClassifier
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.pipeline import RunOptions, prepare_run
    from tests.conftest import write_recipe

    method = {"name": "probe", "pooling": "mean", "layer": 1}
    setup = prepare_run(
        load_recipe(write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, method=method)), RunOptions()
    )
    assert isinstance(setup.model, PooledClassifier) and (setup.model.pooling, setup.model.layer) == ("mean", 1)
    context = PhaseContext(
        prepared=setup.prepared, tokenizer=setup.tokenizer, train=setup.loaded.recipe.train, pooled_features=True
    )
    fresh = Probe(setup.loaded.recipe.method)  # never prepared
    (phase,) = fresh.phases(setup.model, context)
    inputs = phase.build()
    assert isinstance(inputs.model, HeadOnFeatures)
    assert "feature_seconds" in inputs.info  # features extracted with the model's pooling and layer
