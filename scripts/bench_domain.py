"""Domain-adaptation benchmark: SST-2 (movie sentences) -> Amazon electronics and kitchen reviews, no target labels.

What it measures
    For each target domain and seed it runs `nlp-transfer adapt` on recipes/movies_to_products_minilm.yaml
    (all-MiniLM-L6-v2, offline): source-only (finetune on SST-2), +continued pre-training (masked LM on the
    unlabelled target reviews first), +self-training (pseudo-labelled target reviews added to SST-2), both. Each row
    is evaluated on SST-2 dev (source) and the domain's 400 labelled test reviews (target; labels used for this
    evaluation only). It prints every run, then the mean over seeds per domain and row with the change against
    source-only, and checks the issue's target: the best label-free row beats source-only on target accuracy by at
    least 2 points on average over the domains, while losing at most 1 point on source dev.

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_domain.py                 # 2 domains x 3 seeds x 4 rows (hours)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_domain.py --rows source-only,+self-training
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_domain.py --quick         # tiny sizes, a few minutes: smoke only
    Runs go to runs/bench_domain/<domain>-s<seed> and are reused when run again (finished stages are skipped).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "movies_to_products_minilm.yaml"
QUICK = [
    "data.max_train_samples=1000",
    "train.epochs=2",
    "data.max_eval_samples=200",
    "adapt.target.max_corpus_samples=200",
    "adapt.target.max_test_samples=200",
    "adapt.stages.0.max_steps=3",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default="electronics,kitchen")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0, 1, ...")
    parser.add_argument("--rows", default=None, help="comma-separated rows (default: all four)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one seed, one domain: a smoke test")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_domain")
    parser.add_argument("-o", "--override", action="append", default=[], help="recipe override, as in the CLI")
    args = parser.parse_args()

    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.adapt.chain import AdaptOptions, chain_rows, run_rows
    from nlp_transfer.studies.adapt.table import save_table

    domains = ["electronics"] if args.quick else args.domains.split(",")
    seeds = 1 if args.quick else args.seeds
    out = args.out / "quick" if args.quick else args.out
    results: list[dict[str, Any]] = []
    for domain in domains:
        for seed in range(seeds):
            overrides = [
                f"adapt.target.corpus=amazon_mds/{domain}/train.jsonl",
                f"adapt.target.test=amazon_mds/{domain}/test.jsonl",
                f"train.seed={seed}",
                *(QUICK if args.quick else []),
                *args.override,
            ]
            loaded = load_recipe(RECIPE, overrides)
            assert loaded.recipe.adapt is not None
            rows = chain_rows(loaded.recipe.adapt, all_rows=True)
            if args.rows:
                rows = {name: rows[name] for name in args.rows.split(",")}
            folder = out / f"{domain}-s{seed}"
            table = run_rows(loaded, rows, AdaptOptions(output_dir=folder))
            print(f"\n## {domain}, seed {seed}\n" + save_table(folder, table), flush=True)
            results += [{"domain": domain, "seed": seed, **row} for row in table]
    summary = summarise(results, domains)
    (out / "summary.json").write_text(json.dumps({"runs": results, "summary": summary}, indent=2) + "\n")
    print(f"\nsaved {out / 'summary.json'}")


def summarise(results: list[dict[str, Any]], domains: list[str]) -> dict[str, Any]:
    """Mean over seeds per (domain, row); change against source-only; the issue's check on the best row."""
    print("\n## mean over seeds (change against source-only, in points)\n")
    print("| domain | model | seeds | source acc | target acc | target macro-F1 | target entropy | time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    means: dict[tuple[str, str], dict[str, float]] = {}
    for domain in domains:
        for row in dict.fromkeys(r["row"] for r in results):
            runs = [r for r in results if r["domain"] == domain and r["row"] == row]
            if not runs:
                continue
            mean = {
                key: statistics.mean(r[key] for r in runs)
                for key in ("source_accuracy", "target_accuracy", "target_macro_f1", "target_entropy", "seconds")
            }
            means[domain, row] = mean
            base = means[domain, "source-only"]
            delta = {k: 100 * (mean[k] - base[k]) for k in ("source_accuracy", "target_accuracy", "target_macro_f1")}
            print(
                f"| {domain} | {row} | {len(runs)} | {100 * mean['source_accuracy']:.2f} "
                f"({delta['source_accuracy']:+.2f}) | {100 * mean['target_accuracy']:.2f} "
                f"({delta['target_accuracy']:+.2f}) | {100 * mean['target_macro_f1']:.2f} "
                f"({delta['target_macro_f1']:+.2f}) | {mean['target_entropy']:.3f} | {mean['seconds']:.0f} |"
            )
    verdicts = {}
    for row in {row for _, row in means} - {"source-only"}:
        target_gain = statistics.mean(
            100 * (means[d, row]["target_accuracy"] - means[d, "source-only"]["target_accuracy"]) for d in domains
        )
        source_change = statistics.mean(
            100 * (means[d, row]["source_accuracy"] - means[d, "source-only"]["source_accuracy"]) for d in domains
        )
        verdicts[row] = {"target_gain": round(target_gain, 2), "source_change": round(source_change, 2)}
    if verdicts:
        best = max(verdicts, key=lambda row: verdicts[row]["target_gain"])
        gain, change = verdicts[best]["target_gain"], verdicts[best]["source_change"]
        met = gain >= 2.0 and change >= -1.0
        print(
            f"\nbest label-free row: {best}: target accuracy {gain:+.2f} points on average over "
            f"{', '.join(domains)}, source dev {change:+.2f}; target (>= +2, source >= -1): "
            f"{'met' if met else 'NOT met'}"
        )
    return {"rows": verdicts}


if __name__ == "__main__":
    main()
