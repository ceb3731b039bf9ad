"""Does augmentation help a pre-trained transformer on a small training set? `compare` with and without it.

What it measures
    `nlp-transfer compare recipes/sst2_minilm_lpft.yaml` (all-MiniLM-L6-v2, offline, dev = all 872 SST-2 dev
    sentences) for the given methods at the given training sizes and seeds, once as the recipe is and once with
    `augment: {copies: C, operations: [...]}`; then one table: eval accuracy mean ± std without and with
    augmentation, the difference, and whether it exceeds the spread over seeds. Each run's training subset is the
    same with and without (the seed picks it); augmentation adds C altered copies of each of its rows.
    C copies also mean (C + 1) times the optimizer steps, so a third arm (at --same-steps-sizes) trains without
    augmentation for (C + 1) times the recipe's epochs: what the copies add beyond the extra steps.

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_augment.py                       # 100 and 1,000, 3 seeds
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_augment.py --sizes 100 --seeds 1 --methods full   # smoke
    Compare folders go to runs/bench_augment/{plain,augmented,same_steps}; a run again skips finished cells.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "sst2_minilm_lpft.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="full,probe_then_finetune")
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--operations", default="delete,swap,insert,synonym")
    parser.add_argument(
        "--same-steps-sizes", default="100", help="sizes of the no-augmentation, more-epochs arm ('' none)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_augment")
    parser.add_argument("-o", "--override", action="append", default=[], help="more recipe overrides, both arms")
    args = parser.parse_args()

    from bench_results import write_results
    from typer.testing import CliRunner

    from nlp_transfer.cli import app
    from nlp_transfer.recipe import load_recipe

    augment = f"augment={{copies: {args.copies}, operations: [{args.operations}]}}"
    epochs = load_recipe(RECIPE).recipe.train.epochs * (args.copies + 1)
    arms = {
        "plain": ([], args.sizes),
        "augmented": (["-o", augment], args.sizes),
        "same_steps": (["-o", f"train.epochs={epochs:g}"], args.same_steps_sizes),
    }
    cells: dict[str, list[dict[str, Any]]] = {}
    for arm, (extra, sizes) in arms.items():
        folder = args.out / arm
        if not sizes:
            cells[arm] = []
            continue
        command = ["compare", str(RECIPE), "--methods", args.methods, "--train-sizes", sizes]
        command += ["--seeds", str(args.seeds), "--output-dir", str(folder), *extra]
        for override in args.override:
            command += ["-o", override]
        print(f"== {arm}: nlp-transfer {' '.join(command)}", flush=True)
        result = CliRunner().invoke(app, command)
        if result.exit_code != 0:
            raise SystemExit(f"{arm} failed:\n{result.output}")
        cells[arm] = json.loads((folder / "compare.json").read_text(encoding="utf-8"))["cells"]

    print(
        f"\nAugmentation ({args.copies} copies per example: {args.operations}) on SST-2, eval accuracy on all 872 dev"
    )
    print(
        "| method | train examples | without | without, same steps | with | difference | beyond the seed spread? "
        "| with - same steps | time without / with (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for method in args.methods.split(","):
        for size in sorted({c["train_size"] for c in cells["plain"]}):
            a, b, same = ([c for c in cells[arm] if c["method"] == method and c["train_size"] == size] for arm in arms)
            plain, more = [c["value"] for c in a], [c["value"] for c in b]
            spread = max(_std(plain), _std(more))
            difference = 100 * (statistics.fmean(more) - statistics.fmean(plain))
            beyond = "yes" if abs(difference) > 100 * spread else "no"
            control = _show([c["value"] for c in same]) if same else "-"
            versus = (
                f"{100 * (statistics.fmean(more) - statistics.fmean(c['value'] for c in same)):+.2f}" if same else "-"
            )
            seconds = f"{statistics.fmean(c['train_wall_seconds'] for c in a):.0f} / "
            seconds += f"{statistics.fmean(c['train_wall_seconds'] for c in b):.0f}"
            print(
                f"| {method} | {size:,} | {_show(plain)} | {control} | {_show(more)} | {difference:+.2f} "
                f"| {beyond} ({len(plain)} seeds) | {versus} | {seconds} |"
            )
            rows.append(
                {
                    "method": method,
                    "train_size": size,
                    "without": plain,
                    "with": more,
                    "same_steps": [c["value"] for c in same],
                    "difference_points": round(difference, 2),
                    "beyond_seed_spread": beyond == "yes",
                    "train_seconds_without": [c["train_wall_seconds"] for c in a],
                    "train_seconds_with": [c["train_wall_seconds"] for c in b],
                }
            )
    seeds = sorted({c["seed"] for c in cells["plain"] if "seed" in c})
    print(
        f"wrote {write_results('bench_augment', rows, seeds=seeds, notes=f'{args.copies} copies: {args.operations}')}"
    )


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _show(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.2f} ± {100 * _std(values):.2f}"


if __name__ == "__main__":
    main()
