"""Label-shape benchmarks: multi-label, regression, imbalanced classes and long documents with all-MiniLM-L6-v2.

What it measures (each section trains real runs into <out>/<section>/..., prints a markdown table, and writes
<out>/<section>.json; a run folder that is already complete is read back instead of trained again, so a section
cut short continues where it stopped):

  goemotions  recipes/goemotions_minilm.yaml (43,410 Reddit comments, 28 labels) with class_weights none and
              balanced; for each model the test macro/micro-F1 with a fixed 0.5 threshold, one global threshold and
              per-label thresholds, both tuned on dev (the model's dev and test logits are computed once here).
  emobank     recipes/emobank_minilm.yaml: full fine-tuning against a frozen probe (mean pooling, cached
              features); test Pearson r for valence, arousal and dominance.
  amazon      recipes/amazon_ratings_minilm.yaml: the 1-5 star rating as a regression target against the same
              ratings as classes; test MAE in stars (classes: the argmax star and the probability-weighted star).
  tweeteval   recipes/tweeteval_emotion_minilm.yaml with class_weights none and balanced: test macro-F1 and
              per-class F1.
  imdb        recipes/imdb_windows_minilm.yaml at max_length 128 with truncation head, head_tail and windows:
              accuracy on the 1,000 held-out reviews.
  speed       the same 5,000 SST-2 sentences, 1 epoch, no evaluation, as single-label classification, multi-label
              (each sentence's one label as a label set) and regression (the label as a number): train samples/s.

Every run uses train.precision bf16 (autocast on the CPU) unless --fp32 (train.precision fp32).

How to run (heavy: under the shared lock)
    flock /work/heavy.lock env HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_labels.py goemotions
    ... scripts/bench_labels.py emobank amazon tweeteval imdb speed      (sections in any order)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_results import write_results

REPO = Path(__file__).resolve().parents[1]
BF16 = ["train.precision=bf16"]
QUICK: list[str] = []  # --quick (a smoke test on a few hundred rows), --epochs, --max-train: overrides of every run
WEIGHTS = ["none", "balanced"]  # --weights: the class_weights settings goemotions and tweeteval compare


def train(recipe: str, overrides: list[str], run_dir: Path, fp32: bool) -> dict[str, Any]:
    """Train one run (or read back a complete one); returns its metrics.json."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.runfolder.folder import METRICS_FILE, read_status
    from nlp_transfer.train.pipeline import RunOptions, run

    if read_status(run_dir).get("state") == "complete":
        print(f"{run_dir}: complete, read back")
        return dict(json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8")))
    loaded = load_recipe(REPO / "recipes" / recipe, [*overrides, *(["train.precision=fp32"] if fp32 else BF16), *QUICK])
    started = time.perf_counter()
    result = run(loaded, RunOptions(output_dir=run_dir, overwrite=True))
    print(f"{run_dir}: trained in {time.perf_counter() - started:.0f} s")
    return result.metrics


def texts_and_rows(recipe: str, split: str) -> Any:
    """A recipe's split as rows (read like the run read it)."""
    from nlp_transfer.data.assets import default_data_root
    from nlp_transfer.data.loading import load_data
    from nlp_transfer.recipe import load_recipe

    loaded = load_recipe(REPO / "recipes" / recipe, QUICK)
    task: Any = loaded.recipe.task
    data = load_data(
        loaded.recipe.data,
        label_column=task.label if isinstance(task.label, str) else "label",
        seed=loaded.recipe.train.seed,
        data_root=default_data_root(),
        base_dir=loaded.path.parent,
    )
    return data.splits[split]


def goemotions(out: Path, fp32: bool) -> list[dict[str, Any]]:
    from nlp_transfer.recipe import MultiLabelTask
    from nlp_transfer.tasks.metrics import multi_label_metrics
    from nlp_transfer.tasks.multi_label import LabelReader, sigmoid
    from nlp_transfer.tasks.thresholds import tune
    from nlp_transfer.use.text_outputs import TextModel
    from nlp_transfer.use.trained import open_trained

    recipe = "goemotions_minilm.yaml"
    rows = []
    for weights in WEIGHTS:
        run_dir = out / f"weights-{weights}"
        metrics = train(recipe, [f"task.class_weights={weights}"], run_dir, fp32)
        trained = open_trained(run_dir)
        model = TextModel(trained, batch_size=128)
        task = MultiLabelTask.model_validate(trained.recipe["task"])
        names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
        found = {}
        for split in ("eval", "test"):
            data = texts_and_rows(recipe, split)
            gold = LabelReader(task, names, names).matrix(data, split)
            probabilities = sigmoid(np.concatenate([o.numpy() for o in model.outputs(list(data["text"]))]))
            found[split] = (probabilities, gold.astype(int))
        for strategy in ("fixed", "global", "per_label"):
            thresholds = tune(*found["eval"], strategy, 0.5)
            scores = {
                split: multi_label_metrics(gold, probabilities >= thresholds, probabilities, names)
                for split, (probabilities, gold) in found.items()
            }
            rare = [n for n in names if scores["test"][f"support_{n}"] < 50]
            rows.append(
                {
                    "class_weights": weights,
                    "thresholds": "0.5" if strategy == "fixed" else f"{strategy} (tuned on dev)",
                    "test_macro_f1": scores["test"]["macro_f1"],
                    "test_micro_f1": scores["test"]["micro_f1"],
                    "dev_macro_f1": scores["eval"]["macro_f1"],
                    "test_rare_f1": float(np.mean([scores["test"][f"f1_{n}"] for n in rare])),
                    "rare_labels": rare,
                    "test_macro_roc_auc": scores["test"]["macro_roc_auc"],
                    "train_seconds": metrics["train"]["train_wall_seconds"],
                    "train_samples_per_second": metrics["train"]["train_samples_per_second"],
                }
            )
    table = ["| class weights | thresholds | test macro-F1 | micro-F1 | dev macro-F1 | rare labels' F1 | train s |"]
    table.append("|---|---|---|---|---|---|---|")
    for row in rows:
        table.append(
            f"| {row['class_weights']} | {row['thresholds']} | {row['test_macro_f1']:.4f} | "
            f"{row['test_micro_f1']:.4f} | {row['dev_macro_f1']:.4f} | {row['test_rare_f1']:.4f} | "
            f"{row['train_seconds']:.0f} |"
        )
    print("\n".join(table))
    print(f"rare labels (fewer than 50 test comments): {', '.join(rows[0]['rare_labels'])}")
    return rows


def emobank(out: Path, fp32: bool) -> list[dict[str, Any]]:
    variants = {
        "full": [],
        "probe (mean pooling, cached features)": [
            "method={name: probe, pooling: mean, learning_rate: 1.0e-3}",
            "train.epochs=20",
        ],
    }
    rows = []
    for name, overrides in variants.items():
        metrics = train("emobank_minilm.yaml", overrides, out / name.split()[0], fp32)
        test = metrics["test"]
        rows.append(
            {
                "method": name,
                **{f"pearson_{t}": test[f"test_pearson_{t}"] for t in ("V", "A", "D")},
                **{f"mae_{t}": test[f"test_mae_{t}"] for t in ("V", "A", "D")},
                "train_seconds": metrics["train"]["train_wall_seconds"],
            }
        )
    print("| method | test Pearson V | A | D | test MAE V | A | D | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['pearson_V']:.4f} | {r['pearson_A']:.4f} | {r['pearson_D']:.4f} | "
            f"{r['mae_V']:.4f} | {r['mae_A']:.4f} | {r['mae_D']:.4f} | {r['train_seconds']:.0f} |"
        )
    return rows


def amazon(out: Path, fp32: bool) -> list[dict[str, Any]]:
    from nlp_transfer.tasks.regression import target_scale, unscaled
    from nlp_transfer.use.text_predictors import TextPredictor
    from nlp_transfer.use.trained import open_trained

    recipe = "amazon_ratings_minilm.yaml"
    test = texts_and_rows(recipe, "test")
    texts, stars = list(test["text"]), np.asarray(test["rating"], dtype=float)
    rows = []
    metrics = train(recipe, [], out / "regression", fp32)
    numbers = TextPredictor(open_trained(out / "regression"), 128)
    mean, std = target_scale(numbers.text_model.config, str(out / "regression"))
    values = np.concatenate([unscaled(o.numpy(), mean, std) for o in numbers.text_model.outputs(texts)])[:, 0]
    rows.append({"as": "regression (one number)", "mae": _mae(values, stars), "exact": _exact(values, stars)})
    rows[-1]["train_seconds"] = metrics["train"]["train_wall_seconds"]
    classes = "task={name: classification, label: rating, max_length: 128, truncation: head_tail}"
    metrics = train(recipe, [classes], out / "classification", fp32)
    predictor = TextPredictor(open_trained(out / "classification"), 128)
    values_of = np.array([float(predictor.id2label[i]) for i in range(len(predictor.id2label))])
    probabilities = np.concatenate([o.softmax(-1).numpy() for o in predictor.logits(texts)])
    argmax, expected = values_of[probabilities.argmax(-1)], probabilities @ values_of
    for name, guess in (("classes, argmax star", argmax), ("classes, probability-weighted star", expected)):
        rows.append({"as": name, "mae": _mae(guess, stars), "exact": _exact(guess, stars)})
        rows[-1]["train_seconds"] = metrics["train"]["train_wall_seconds"]
    print(f"stars on the {len(stars):,} test reviews (1, 2, 4 or 5: this collection has no 3-star reviews)")
    print("| rating as | test MAE (stars) | exact star (rounded) | train s |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['as']} | {r['mae']:.4f} | {r['exact']:.2%} | {r['train_seconds']:.0f} |")
    return rows


def _mae(guess: np.ndarray, stars: np.ndarray) -> float:
    return float(np.abs(np.clip(guess, 1, 5) - stars).mean())


def _exact(guess: np.ndarray, stars: np.ndarray) -> float:
    return float((np.rint(np.clip(guess, 1, 5)) == stars).mean())


def tweeteval(out: Path, fp32: bool) -> list[dict[str, Any]]:
    rows = []
    for weights in WEIGHTS:
        metrics = train("tweeteval_emotion_minilm.yaml", [f"task.class_weights={weights}"], out / weights, fp32)
        test = metrics["test"]
        rows.append(
            {
                "class_weights": weights,
                "metric_for_best": "macro_f1" if weights != "none" else "accuracy",
                "macro_f1": test["test_macro_f1"],
                "accuracy": test["test_accuracy"],
                **{f"f1_{c}": test[f"test_f1_{c}"] for c in ("anger", "joy", "optimism", "sadness")},
            }
        )
    print("| class weights | best checkpoint on | test macro-F1 | accuracy | F1 anger | joy | optimism | sadness |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['class_weights']} | {r['metric_for_best']} | {r['macro_f1']:.4f} | {r['accuracy']:.4f} | "
            f"{r['f1_anger']:.4f} | {r['f1_joy']:.4f} | {r['f1_optimism']:.4f} | {r['f1_sadness']:.4f} |"
        )
    return rows


def imdb(out: Path, fp32: bool) -> list[dict[str, Any]]:
    rows = []
    for truncation in ("head", "head_tail", "windows"):
        metrics = train("imdb_windows_minilm.yaml", [f"task.truncation={truncation}"], out / truncation, fp32)
        rows.append(
            {
                "truncation": truncation,
                "accuracy": metrics["eval"]["eval_accuracy"],
                "macro_f1": metrics["eval"]["eval_macro_f1"],
                "train_seconds": metrics["train"]["train_wall_seconds"],
            }
        )
    print("| truncation (max_length 128) | held-out accuracy | macro-F1 | train s |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['truncation']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['train_seconds']:.0f} |")
    return rows


def speed(out: Path, fp32: bool) -> list[dict[str, Any]]:
    common = [
        "data.max_train_samples=5000",
        "train.epochs=1",
        "train.eval_strategy=no",
        "data.eval={path: sst2/dev.tsv, max_samples: 64}",
    ]
    shapes = {
        "classification": [],
        "multi_label": ["task={name: multi_label, text: sentence, label: label, max_length: 64}"],
        "regression": ["task={name: regression, text: sentence, label: label, max_length: 64}"],
    }
    rows = []
    for shape, overrides in shapes.items():
        metrics = train("quickstart.yaml", [*common, *overrides], out / shape, fp32)
        rows.append({"task": shape, "samples_per_second": metrics["train"]["train_samples_per_second"]})
    print("| task (5,000 SST-2 sentences, 1 epoch) | train samples/s |")
    print("|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['samples_per_second']:.1f} |")
    return rows


SECTIONS: dict[str, Callable[[Path, bool], list[dict[str, Any]]]] = {
    "goemotions": goemotions,
    "emobank": emobank,
    "amazon": amazon,
    "tweeteval": tweeteval,
    "imdb": imdb,
    "speed": speed,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="+", choices=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_labels")
    parser.add_argument("--fp32", action="store_true", help="train in float32 (default: bf16 autocast on the CPU)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 300 training rows, 1 epoch, 200 eval/test")
    parser.add_argument("--epochs", type=float, default=None, help="train.epochs of every run (default: the recipe's)")
    parser.add_argument("--max-train", type=int, default=None, help="a seeded subset of each training set")
    parser.add_argument("--seed", type=int, default=None, help="train.seed of every run (default: the recipe's)")
    parser.add_argument(
        "--weights", default="none,balanced", help="class_weights settings compared (goemotions, tweeteval)"
    )
    args = parser.parse_args()
    WEIGHTS[:] = args.weights.split(",")
    QUICK.extend([f"train.epochs={args.epochs}"] if args.epochs is not None else [])
    QUICK.extend([f"data.max_train_samples={args.max_train}"] if args.max_train is not None else [])
    QUICK.extend([f"train.seed={args.seed}"] if args.seed is not None else [])
    if args.quick:
        QUICK.extend(
            ["data.max_train_samples=300", "data.max_eval_samples=200", "data.max_test_samples=200", "train.epochs=1"]
        )
    for section in args.sections:
        print(f"\n## {section}\n")
        rows = SECTIONS[section](args.out / section, args.fp32)
        (args.out / f"{section}.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        # A --quick smoke run is not a result: its record stays beside the runs.
        where = args.out if args.quick else None
        print(f"wrote {write_results(f'bench_labels_{section}', rows, directory=where)}")


if __name__ == "__main__":
    main()
