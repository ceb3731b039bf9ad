"""LoRA settings found by `nlp-transfer tune` against the shipped LoRA settings and full fine-tuning: all-MiniLM-L6-v2,
SST-2, every cell scored on all 872 dev sentences, mean ± std over seeds (each seed its own training subset).

Stages (each resumable: finished runs are kept in <out>/bench_tune.json; run them one at a time or all):
  tune        nlp-transfer tune recipes/sst2_minilm_lora_tune.yaml: 20 trials on 4,000 sentences -> best_recipe.yaml
  small       4,000 sentences, 1 epoch: the shipped LoRA settings (the tune recipe as written) vs the found ones
  quickstart  20,000 sentences, 1 epoch (the quickstart's budget): shipped LoRA (recipes/sst2_minilm_lora.yaml),
              found LoRA (best_recipe.yaml at 20,000), full fine-tuning (recipes/quickstart.yaml)
Targets: found beats shipped by at least 1 point at 4,000; found LoRA within 1 point of full at 20,000.
The seeded comparisons keep no checkpoint by dev accuracy (train.eval_strategy=no): each run's final model is scored.

Usage: python scripts/bench_tune.py [--stage tune|small|quickstart|all] [--seeds 5] [--out runs/bench-tune] [--bf16]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench_results import write_results

from nlp_transfer.core.files import read_json_or_empty, write_json_atomically
from nlp_transfer.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TUNE_RECIPE = RECIPES / "sst2_minilm_lora_tune.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["tune", "small", "quickstart", "all", "report"], default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-tune"))
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CPU (about twice as fast here)")
    args = parser.parse_args()
    precision = [f"train.precision={'bf16' if args.bf16 else 'fp32'}"]
    args.out.mkdir(parents=True, exist_ok=True)
    best = args.out / "tune" / "best_recipe.yaml"
    if args.stage in ("tune", "all"):
        from nlp_transfer.studies.tune import TuneOptions, run_tune

        started = time.perf_counter()
        run_tune(load_recipe(TUNE_RECIPE, precision), TuneOptions(output_dir=args.out / "tune"))
        print(f"tune: {time.perf_counter() - started:.0f} s")
    seeds = [42 + i for i in range(args.seeds)]
    final = [*precision, "train.eval_strategy=no"]
    if args.stage in ("small", "all"):
        cells(args.out, "shipped@4000", TUNE_RECIPE, final, seeds)
        cells(args.out, "found@4000", best, final, seeds)
    if args.stage in ("quickstart", "all"):
        cells(args.out, "full@20000", RECIPES / "quickstart.yaml", final, seeds)
        cells(args.out, "found@20000", best, [*final, "data.max_train_samples=20000"], seeds)
        cells(args.out, "shipped@20000", RECIPES / "sst2_minilm_lora.yaml", final, seeds)
    record = read_json_or_empty(args.out / "bench_tune.json")
    print(report(record))
    found = record.get("cells", [])
    print(f"wrote {write_results('bench_tune', found, seeds=sorted({c['seed'] for c in found}))}")


def cells(out: Path, name: str, recipe: Path, overrides: list[str], seeds: list[int]) -> None:
    """One run per seed (skipping those already recorded), its metrics appended to bench_tune.json."""
    from nlp_transfer.train.pipeline import RunOptions, run

    record_path = out / "bench_tune.json"
    for seed in seeds:
        record = read_json_or_empty(record_path)
        if any(c["name"] == name and c["seed"] == seed for c in record.get("cells", [])):
            continue
        loaded = load_recipe(recipe, [*overrides, f"train.seed={seed}", "tune=null"])
        run_dir = out / "runs" / f"{name}-s{seed}"
        result = run(loaded, RunOptions(output_dir=run_dir, overwrite=True))
        cell = {
            "name": name,
            "seed": seed,
            "recipe": str(recipe),
            "overrides": overrides,
            "accuracy": result.metrics["eval"]["eval_accuracy"],
            "train_seconds": result.metrics["train"]["train_wall_seconds"],
            "trainable_parameters": result.metrics["train"]["trainable_parameters"],
        }
        record.setdefault("cells", []).append(cell)
        write_json_atomically(record_path, record)
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"{name} seed {seed}: {100 * cell['accuracy']:.2f}% in {cell['train_seconds']:.0f} s", flush=True)


def report(record: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for cell in record.get("cells", []):
        groups.setdefault(cell["name"], []).append(cell)
    lines = ["| settings | seeds | dev accuracy (mean ± std) | train time (s) | trainable |", "|---|---|---|---|---|"]
    means = {}
    for name, group in groups.items():
        values = [100 * c["accuracy"] for c in group]
        means[name] = statistics.fmean(values)
        spread = f"{statistics.stdev(values):.2f}" if len(values) > 1 else "-"
        seconds = statistics.fmean(c["train_seconds"] for c in group)
        trainable = group[0]["trainable_parameters"]
        lines.append(f"| {name} | {len(values)} | {means[name]:.2f} ± {spread} | {seconds:.0f} | {trainable:,} |")
    if {"shipped@4000", "found@4000"} <= set(means):
        gain = means["found@4000"] - means["shipped@4000"]
        lines.append(f"\nfound - shipped at 4,000: {gain:+.2f} points (target +1: {'met' if gain >= 1 else 'NOT met'})")
    if {"full@20000", "found@20000"} <= set(means):
        gap = means["full@20000"] - means["found@20000"]
        lines.append(
            f"full - found LoRA at 20,000: {gap:.2f} points (target at most 1: {'met' if gap <= 1 else 'NOT met'})"
        )
    if {"full@20000", "shipped@20000"} <= set(means):
        lines.append(f"full - shipped LoRA at 20,000: {means['full@20000'] - means['shipped@20000']:.2f} points")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
