"""Does augmentation help a pre-trained transformer on a small training set? `compare` with and without it.

What it measures
    `nlp-transfer compare recipes/sst2_minilm_lpft.yaml` (all-MiniLM-L6-v2, offline, dev = all 872 SST-2 dev
    sentences) for the given methods at the given training sizes and seeds, once as the recipe is and once with
    `augment: {copies: C, operations: [...]}`; then one table: eval accuracy mean ± std without and with
    augmentation, the difference, and whether it exceeds the spread over seeds. Each run's training subset is the
    same with and without (the seed picks it); augmentation adds C altered copies of each of its rows.

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_augment.py                       # 100 and 1,000, 3 seeds
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_augment.py --sizes 100 --seeds 1 --methods full   # smoke
    Compare folders go to runs/bench_augment/{plain,augmented}; a run again skips finished cells.
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
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_augment")
    parser.add_argument("-o", "--override", action="append", default=[], help="more recipe overrides, both arms")
    args = parser.parse_args()

    from typer.testing import CliRunner

    from nlp_transfer.cli import app

    augment = f"augment={{copies: {args.copies}, operations: [{args.operations}]}}"
    arms = {"plain": [], "augmented": ["-o", augment]}
    cells: dict[str, list[dict[str, Any]]] = {}
    for arm, extra in arms.items():
        folder = args.out / arm
        command = ["compare", str(RECIPE), "--methods", args.methods, "--train-sizes", args.sizes]
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
        "| method | train examples | without | with | difference | beyond the seed spread? | time without / with (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for size in sorted({c["train_size"] for c in cells["plain"]}):
            plain = [c for c in cells["plain"] if c["method"] == method and c["train_size"] == size]
            more = [c for c in cells["augmented"] if c["method"] == method and c["train_size"] == size]
            a, b = [c["value"] for c in plain], [c["value"] for c in more]
            spread = max(_std(a), _std(b))
            difference = 100 * (statistics.fmean(b) - statistics.fmean(a))
            beyond = "yes" if abs(difference) > 100 * spread else "no"
            seconds = f"{statistics.fmean(c['train_wall_seconds'] for c in plain):.0f} / "
            seconds += f"{statistics.fmean(c['train_wall_seconds'] for c in more):.0f}"
            print(
                f"| {method} | {size:,} | {_show(a)} | {_show(b)} | {difference:+.2f} | {beyond} ({len(a)} seeds) "
                f"| {seconds} |"
            )


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _show(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.2f} ± {100 * _std(values):.2f}"


if __name__ == "__main__":
    main()
