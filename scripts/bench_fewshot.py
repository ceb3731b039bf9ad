"""Few-shot SST-2 with all-MiniLM-L6-v2: method contrastive against probe, lora, full and probe_then_finetune at 8, 16,
32 and 64 labelled sentences per class, 5 seeds each, in one `compare` table, then the issue's targets:

  - at 16 per class, contrastive at least 10 points above the best of the others (mean over seeds)
  - at 32 per class, contrastive above 75.1% (a published SetFit model on all-MiniLM-L6-v2, 32-shot SST-2 test)

Each cell is a run of recipes/sst2_minilm_fewshot.yaml with a seeded class-balanced training set (compare
--per-class) scored on all 872 SST-2 dev sentences; no checkpoint selection on dev (train.eval_strategy=no).
The other methods train train.epochs (here 20) at their compare learning rates (full 1e-4, probe 1e-3, lora 2e-3,
probe_then_finetune 1e-3 then 1e-4); contrastive uses its method section (1 pass over 40 pairs per sentence, head 50
epochs). compare.json keeps every finished cell, so an interrupted benchmark resumes where it stopped.

Usage: python scripts/bench_fewshot.py [--out runs/bench-fewshot] [--seeds 5] [--sizes 8,16,32,64] [--bf16]
       (--bf16: bfloat16 autocast on CPU, about twice as fast on CPUs with AVX-512 BF16)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench_results import write_results

from nlp_transfer.recipe import load_recipe
from nlp_transfer.studies.compare import CompareOptions, parse_train_sizes, run_compare

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "sst2_minilm_fewshot.yaml"
METHODS = ["probe", "lora", "full", "probe_then_finetune", "contrastive"]
SETFIT_32_SHOT = 0.751


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fewshot"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="8,16,32,64", help="examples per class")
    parser.add_argument("--epochs", type=float, default=20, help="train.epochs of the other methods")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()

    overrides = ["train.eval_strategy=no", f"train.epochs={args.epochs}"]
    overrides.append(f"train.precision={'bf16' if args.bf16 else 'fp32'}")
    options = CompareOptions(
        methods=METHODS,
        train_sizes=parse_train_sizes(args.sizes),
        seeds=args.seeds,
        output_dir=args.out,
        per_class=True,
    )
    folder = run_compare(load_recipe(RECIPE, overrides), options)
    cells = json.loads((folder / "compare.json").read_text(encoding="utf-8"))["cells"]
    print(targets(cells))
    seeds = sorted({cell["seed"] for cell in cells})
    written = write_results("bench_fewshot", cells, seeds=seeds, notes="one row per compare cell (per-class sizes)")
    print(f"wrote {written}")


def targets(cells: list[dict]) -> str:
    by: dict[tuple[str, int], list[float]] = {}
    for cell in cells:
        by.setdefault((cell["method"], cell["train_size"]), []).append(float(cell["value"]))
    lines = ["", "Targets (dev accuracy, mean ± std over seeds):"]
    for size in sorted({size for _, size in by}):
        if ("contrastive", size) not in by:
            continue
        ours = by[("contrastive", size)]
        others = {m: v for (m, s), v in by.items() if s == size and m != "contrastive"}
        best_name, best = max(others.items(), key=lambda item: statistics.fmean(item[1]))
        margin = 100 * (statistics.fmean(ours) - statistics.fmean(best))
        line = (
            f"- {size} per class: contrastive {100 * statistics.fmean(ours):.2f} ± {_std(ours)}, best other "
            f"{best_name} {100 * statistics.fmean(best):.2f} ± {_std(best)}: {margin:+.2f} points"
        )
        if size == 16:
            line += f" (target +10: {'met' if margin >= 10 else 'NOT met'})"
        if size == 32:
            met = statistics.fmean(ours) > SETFIT_32_SHOT
            line += f"; target above {100 * SETFIT_32_SHOT:.1f}: {'met' if met else 'NOT met'}"
        lines.append(line)
    return "\n".join(lines)


def _std(values: list[float]) -> str:
    return f"{100 * statistics.stdev(values):.2f}" if len(values) > 1 else "-"


if __name__ == "__main__":
    main()
