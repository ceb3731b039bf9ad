"""Where a training step's time goes, at the quickstart settings: torch.profiler over a few optimizer steps.

What it does
    Runs recipes/quickstart.yaml (all-MiniLM-L6-v2 on SST-2, batch 32, max_length 64, its defaults: bf16 autocast
    where native, length-sorted sub-batches) on just enough rows for --warmup + --steps optimizer steps, and
    profiles --steps steps after --warmup unprofiled ones (kernel selection, first allocations). The window runs
    from the end of one optimizer step to the end of another, so it holds everything a step costs: fetching and
    collating the next batch, each micro-batch's forward and backward, the optimizer, logging. It prints:

    - a grouped table, milliseconds per step and share of the step's wall time: matmul / linear, attention, optimizer,
      autocast casts, host syncs (.item()), data loading and collation, other ops (layer norm, GELU, dropout,
      embeddings, element-wise), and the time in no op at all (Python: the Trainer's per-micro-batch loop, hooks,
      callbacks). Each op's self time counts once, in the group of the op itself or of the nearest enclosing
      region that names a group (an op inside the optimizer's step is optimizer time, whatever it is);
    - the ops with the most self time.

How to run (each a few minutes at most; alone, as benchmarks run)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/profile_step.py                     # quickstart defaults
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/profile_step.py -o train.sub_batch_tokens=512   # a lever
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/profile_step.py --quick             # smoke test (1 + 1 steps)
    --trace trace.json also writes a Chrome trace (chrome://tracing, ui.perfetto.dev); --shapes splits the top ops
    by the shape of their first input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import TrainerCallback

from nlp_transfer.data.assets import default_data_root
from nlp_transfer.data.cache import CACHE_ENV
from nlp_transfer.recipe import load_recipe
from nlp_transfer.train.pipeline import RunOptions, run

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.yaml"

MATMUL = {"aten::mm", "aten::addmm", "aten::matmul", "aten::linear", "aten::addmv"}
BATCHED = {"aten::bmm", "aten::baddbmm"}
CASTS = {"aten::_to_copy", "aten::to", "aten::copy_", "aten::_autocast_to_reduced_precision"}
SYNCS = {"aten::item", "aten::_local_scalar_dense", "aten::is_nonzero"}
ATTENTION_MARKS = ("scaled_dot_product", "softmax", "attention")
OUTSIDE_OPS = "no op (Python: Trainer loop, hooks, callbacks)"
GROUPS = (
    "matmul / linear",
    "attention",
    "optimizer",
    "autocast casts",
    "host syncs (.item())",
    "data loading + collation",
    "other ops",
    OUTSIDE_OPS,
)


def group_of(event: Any) -> str:
    """The group an op's self time belongs to: an enclosing region's (optimizer, data loader, attention) first."""
    names = [event.name]  # the op, then every op or region around it
    node = event.cpu_parent
    while node is not None:
        names.append(node.name)
        node = node.cpu_parent
    if any(name.startswith("Optimizer.") for name in names):
        return "optimizer"
    if any("DataLoader" in name for name in names):
        return "data loading + collation"
    if event.name in SYNCS:
        return "host syncs (.item())"
    # Batched products are attention's (QK^T, AV and their gradients): linear layers multiply by a 2-D weight (mm,
    # addmm). The backward runs outside the forward's scaled_dot_product_attention, so its bmm is caught by name.
    if event.name in BATCHED or any(mark in name.lower() for name in names for mark in ATTENTION_MARKS):
        return "attention"
    if event.name in MATMUL:
        return "matmul / linear"
    if event.name in CASTS:
        return "autocast casts"
    return "other ops"


class ProfileSteps(TrainerCallback):
    """Profiles optimizer steps warmup+1 .. warmup+steps, from the end of step `warmup` (so the window includes
    fetching the next batches, which the Trainer does before a step begins)."""

    def __init__(self, warmup: int, steps: int, trace: Path | None, shapes: bool = False) -> None:
        self.warmup, self.steps, self.trace, self.shapes = warmup, steps, trace, shapes
        self.profiler: Any = None
        self.started = 0.0
        self.wall = 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.warmup:
            self.profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=self.shapes)
            self.profiler.__enter__()
            self.started = time.perf_counter()
        elif state.global_step == self.warmup + self.steps and self.profiler is not None:
            self.wall = time.perf_counter() - self.started
            self.profiler.__exit__(None, None, None)
            if self.trace is not None:
                self.profiler.export_chrome_trace(str(self.trace))


def print_groups(events: Any, wall: float, steps: int) -> None:
    spent: dict[str, float] = defaultdict(float)
    for event in events:
        spent[group_of(event)] += event.self_cpu_time_total / 1e6  # microseconds -> s
    spent[OUTSIDE_OPS] = max(0.0, wall - sum(spent.values()))
    print(f"\n{steps} optimizer steps profiled: {1000 * wall / steps:.0f} ms a step (wall)")
    print(f"{'where the time goes':<48} {'ms/step':>8} {'share':>7}")
    for group in GROUPS:
        print(f"{group:<48} {1000 * spent[group] / steps:>8.1f} {100 * spent[group] / wall:>6.1f}%")


def print_top_ops(events: Any, steps: int, count: int = 15, shapes: bool = False) -> None:
    """The ops with the most self time; with `shapes`, each op split by the shape of its first input (which tensor a
    fill_ or add_ works on: a (30522, 384) one is the word embeddings' gradient)."""
    by_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in events:
        first = event.input_shapes[0] if shapes and event.input_shapes else None
        entry = by_name[f"{event.name} {list(first)}" if first else event.name]
        entry[0] += event.self_cpu_time_total / 1e3  # ms
        entry[1] += 1
    print(f"\n{'op (self time)':<60} {'ms/step':>8} {'calls/step':>10}")
    for name, (ms, calls) in sorted(by_name.items(), key=lambda item: -item[1][0])[:count]:
        print(f"{name[:60]:<60} {ms / steps:>8.1f} {calls / steps:>10.1f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--warmup", type=int, default=3, help="optimizer steps before profiling")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps profiled")
    parser.add_argument("-o", "--override", action="append", default=[], help="recipe override, as for `run -o`")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    parser.add_argument("--trace", type=Path, default=None, help="also write a Chrome trace here")
    parser.add_argument("--shapes", action="store_true", help="split the top ops by their first input's shape")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 warm-up step, 1 profiled")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warmup, steps = (1, 1) if args.quick else (args.warmup, args.steps)
    root = default_data_root()
    if root is None:
        sys.exit("error: no data root; set $NLP_TRANSFER_DATA")
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    workdir = Path(tempfile.mkdtemp(prefix="profile-step-"))
    profiler = ProfileSteps(warmup, steps, args.trace, args.shapes)
    batch = 32  # the quickstart's train.batch_size
    overrides = [
        f"data.max_train_samples={batch * (warmup + steps)}",
        "data.max_eval_samples=32",  # the evaluation after training is not what is measured
        "train.eval_strategy='no'",
        f"train.logging_steps={warmup + steps}",
        f"output.dir={workdir / 'run'}",
        *args.override,
    ]
    previous_cache = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(workdir / "token-cache")  # leave ~/.cache/nlp-transfer as it was
    try:
        loaded = load_recipe(RECIPE, overrides)
        run(loaded, RunOptions(data_root=root, callbacks=[profiler]))
    finally:
        if previous_cache is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = previous_cache
        shutil.rmtree(workdir, ignore_errors=True)
    if profiler.profiler is None or profiler.wall == 0.0:
        sys.exit("error: the run ended before the profiled steps")
    events = profiler.profiler.events()
    print(f"recipe {RECIPE.name} with {args.override or 'no overrides'}; {threads} torch threads")
    print_groups(events, profiler.wall, steps)
    print_top_ops(events, steps, shapes=args.shapes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
