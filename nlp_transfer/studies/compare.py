"""`nlp-transfer compare`: one recipe, a grid of methods x training-set sizes x seeds, one table and one plot.

Each cell is a normal run (pipeline.run) into <compare dir>/runs/<method>-n<size>-s<seed>. Its metrics go into
compare.json as soon as it finishes and its run folder is deleted (36 MiniLM runs would fill 3 GB), so an interrupted
compare keeps every finished cell, and re-running it with the same --output-dir skips them.

Under `accelerate launch` every process trains every cell together (pipeline.run: rank 0 writes the run folder);
rank 0 alone reads compare.json and decides what is left to train, writes the record, the table and the plot,
deletes finished run folders, and prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError, did_you_mean
from nlp_transfer.core.files import check_output_folder
from nlp_transfer.methods import METHODS
from nlp_transfer.recipe import LoadedRecipe, replace_method
from nlp_transfer.studies.compare_report import aggregate, learning_rate_label, markdown_report, plot_learning_curve

# Used when the recipe's own method is another one: train.learning_rate was tuned for that method, and a frozen
# encoder's head or low-rank adapters train few weights and want larger steps than full fine-tuning. full and
# unfreeze_last keep train.learning_rate; probe_then_finetune has its own probe_learning_rate (default 1e-3).
# LoRA's 2e-3: on 20,000 SST-2 sentences with all-MiniLM-L6-v2, 5e-4 trailed full fine-tuning by 3.9 points and
# 1.5e-3 to 2e-3 by 1.4 to 2.4 (3e-3 was worse again).
RECOMMENDED_LEARNING_RATE: dict[str, float] = {"probe": 1e-3, "lora": 2e-3, "scratch": 1e-4}


@dataclass(frozen=True)
class CompareOptions:
    methods: list[str]
    train_sizes: list[int] | None  # None: the whole training set, once
    seeds: int = 1
    output_dir: Path | None = None
    keep_runs: bool = False
    per_class: bool = False  # train sizes count examples of each label (class-balanced few-shot sets)


def parse_methods(text: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise UserError(f"--methods: give method names separated by commas, from {', '.join(METHODS)}")
    for name in names:
        if name not in METHODS:
            raise UserError(
                f"--methods: unknown method '{name}'{did_you_mean(name, METHODS)}; choose from {', '.join(METHODS)}"
            )
    return names


def parse_train_sizes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    sizes = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) == 0:
            raise UserError(
                f"--train-sizes: '{part}' is not a positive whole number; e.g. --train-sizes 100,1000,10000"
            )
        sizes.append(int(part))
    return sorted(set(sizes))


def run_compare(loaded: LoadedRecipe, options: CompareOptions) -> Path:
    """Run every missing cell, then write compare.md and learning_curve.png. Returns the compare folder."""
    from nlp_transfer.train.callbacks import QuietProgress
    from nlp_transfer.train.pipeline import RunOptions, run

    recipe = loaded.recipe
    distributed.setup()  # under accelerate launch: join the other processes before deciding anything
    main = distributed.is_main()
    say = print if main else _silent  # one voice, not one per process
    folder = distributed.agree(options.output_dir or Path(recipe.output.root) / f"compare-{loaded.name}-{_timestamp()}")
    # before any cell trains: a file above it, an unwritable place
    distributed.decide(lambda: check_output_folder(folder, "--output-dir"))
    info = _data_info(loaded)
    info["per_class"] = options.per_class
    pool = info["smallest_class"] if options.per_class else info["train_pool"]
    sizes = _clamp(options.train_sizes, pool, recipe.data.max_train_samples, say)
    seeds = [recipe.train.seed + i for i in range(options.seeds)]
    info.update(seeds=seeds, metric=recipe.train.metric_for_best)
    record = distributed.decide(lambda: _open_record(folder / "compare.json", loaded, info))
    done = {_key(cell) for cell in record["cells"]}
    grid = [(size, method, seed) for size in sizes for method in options.methods for seed in seeds]
    say(f"compare folder: {folder} ({len(grid)} runs; re-run with --output-dir {folder} to resume)")

    try:
        for number, (size, method, seed) in enumerate(grid, start=1):
            where = f"[{number}/{len(grid)}] {method}, {size:,} examples, seed {seed}"
            if (method, size, seed) in done:
                say(f"{where}: skipping, already in compare.json")
                continue
            cell_recipe = _cell_recipe(loaded, method, size, seed, options.per_class)
            say(f"{where}: training (learning rate {learning_rate_label(_learning_rates(cell_recipe))})")
            where_to = folder / "runs" / f"{method}-n{size}-s{seed}"
            # One line per cell (below), not one per evaluation: a contrastive head evaluates every epoch.
            result = run(cell_recipe, RunOptions(output_dir=where_to, overwrite=True, callbacks=[QuietProgress()]))
            rows_trained = size * info["labels"] if options.per_class else size
            cell = _cell(cell_recipe, size, result.metrics, rows_trained)
            record["cells"].append(cell)
            if main:
                _write_json(folder / "compare.json", record)  # after every cell: an interruption keeps what finished
            if main and not options.keep_runs:
                shutil.rmtree(result.run_dir, ignore_errors=True)
                with contextlib.suppress(OSError):  # an empty runs/ is clutter; the next run makes it again
                    (folder / "runs").rmdir()
            say(f"{where}: eval {info['metric']} {cell['value']:.4f} in {cell['train_wall_seconds']:.1f}s")
            if cell.get("overfitting"):
                say(f"{where}: note: {cell['overfitting']}")
    except KeyboardInterrupt:
        say(f"interrupted: compare.json keeps {len(record['cells'])} finished runs; resume with --output-dir {folder}")
        raise

    if main:
        _write_report(loaded, options, folder, record, info, grid)
    return folder


def _write_report(
    loaded: LoadedRecipe,
    options: CompareOptions,
    folder: Path,
    record: dict[str, Any],
    info: dict[str, Any],
    grid: list[tuple[int, str, int]],
) -> None:
    wanted = {(method, size, seed) for size, method, seed in grid}
    rows = aggregate([cell for cell in record["cells"] if _key(cell) in wanted])
    report = markdown_report(rows, info)
    (folder / "compare.md").write_text(report, encoding="utf-8")
    print(report)
    examples = "labelled training examples" + (" per class" if options.per_class else "")
    title = f"{loaded.name}: eval {info['metric']} vs {examples}"
    if plot_learning_curve(rows, folder / "learning_curve.png", title, f"eval {info['metric']}", xlabel=examples):
        print(f"wrote {folder / 'compare.md'}, {folder / 'learning_curve.png'} and compare.json")
    else:
        print(f"wrote {folder / 'compare.md'} and compare.json; matplotlib is missing, so no PNG")


def _silent(*args: Any, **kwargs: Any) -> None:
    """print() for the processes of a launch other than the main one."""


def _data_info(loaded: LoadedRecipe) -> dict[str, Any]:
    """Split sizes, read once up front: the training pool bounds --train-sizes, and the report names them."""
    from nlp_transfer.data.assets import default_data_root
    from nlp_transfer.data.loading import load_data

    recipe = loaded.recipe
    label_column = str(getattr(recipe.task, "label", "label"))
    data = load_data(
        # The whole pool; each run takes its subset.
        recipe.data.model_copy(update={"max_train_samples": None, "max_train_per_class": None}),
        label_column=label_column,
        seed=recipe.train.seed,
        data_root=default_data_root(),
        base_dir=loaded.path.parent,
    )
    train = data.splits["train"]
    labels = train[label_column] if label_column in train.column_names else []
    per_label = Counter(str(value).strip() for value in labels if value is not None and str(value).strip())
    return {
        "recipe": str(loaded.path),
        "name": loaded.name,
        "model": recipe.model.name,
        "train_pool": len(data.splits["train"]),
        "eval_rows": len(data.splits["eval"]),
        "eval_held_out": recipe.data.eval is None,  # then each seed holds out its own eval rows
        "test_rows": len(data.splits["test"]) if "test" in data.splits else None,
        # --per-class: how many labels a size is multiplied by, and the most any size can take of each
        "labels": len(per_label),
        "smallest_class": min(per_label.values(), default=0),
    }


def _clamp(sizes: list[int] | None, pool: int, recipe_limit: int | None, say: Any = print) -> list[int]:
    """Sizes past the pool would all train on the same rows: they become the pool size (said once, here)."""
    if sizes is None:
        return [min(recipe_limit or pool, pool)]
    for size in sizes:
        if size > pool:
            say(f"note: --train-sizes {size} is more than the {pool:,} training rows; that run uses all of them")
    return sorted({min(size, pool) for size in sizes})


def _cell_recipe(loaded: LoadedRecipe, method: str, size: int, seed: int, per_class: bool = False) -> LoadedRecipe:
    """The recipe with this cell's method, training subset and seed, validated like one written in a file."""
    recipe = loaded.recipe
    if recipe.method.name == method:
        spec: dict[str, Any] = recipe.method.model_dump(mode="json")  # the recipe's own settings win
    else:
        spec = {"name": method}
        if method in RECOMMENDED_LEARNING_RATE:
            spec["learning_rate"] = RECOMMENDED_LEARNING_RATE[method]
    varied = recipe.model_copy(
        update={
            "data": recipe.data.model_copy(
                update={
                    "max_train_samples": None if per_class else size,
                    "max_train_per_class": size if per_class else None,
                }
            ),
            "train": recipe.train.model_copy(update={"seed": seed}),
        }
    )
    # replace_method dumps and re-validates the whole recipe, so a bad size or seed is a UserError here too.
    return replace_method(LoadedRecipe(recipe=varied, path=loaded.path, name=loaded.name), spec, suffix=f"-{method}")


def _learning_rates(loaded: LoadedRecipe) -> dict[str, float]:
    """The learning rate(s) a method trains with: its own field, else train.learning_rate (probe stage apart)."""
    method, train = loaded.recipe.method, loaded.recipe.train
    rates = {"learning_rate": getattr(method, "learning_rate", None) or train.learning_rate}
    if hasattr(method, "probe_learning_rate"):
        rates["probe_learning_rate"] = method.probe_learning_rate
    if hasattr(method, "head_learning_rate"):  # contrastive: the encoder on pairs, then the head
        rates["head_learning_rate"] = method.head_learning_rate
    return rates


def _cell(loaded: LoadedRecipe, size: int, metrics: dict[str, dict[str, Any]], rows: int) -> dict[str, Any]:
    metric, train = loaded.recipe.train.metric_for_best, metrics["train"]
    test = metrics.get("test")
    return {
        "method": loaded.recipe.method.name,
        "train_size": size,
        "seed": loaded.recipe.train.seed,
        **_learning_rates(loaded),
        "value": metrics["eval"][f"eval_{metric}"],
        # The best constant answer on the eval rows every cell is scored on (where the task has
        # such a baseline): what a method must beat to have learned anything.
        "baseline": metrics.get("diagnostics", {}).get("baseline", {}).get(metric),
        # What the run's own diagnostics saw (eval loss climbing while the metric stays flat), as single runs say it.
        "overfitting": metrics.get("diagnostics", {}).get("overfitting", {}).get("message"),
        "test_value": test.get(f"test_{metric}") if test else None,
        "trainable_parameters": train["trainable_parameters"],
        "total_parameters": train["total_parameters"],
        "train_wall_seconds": train["train_wall_seconds"],
        # Per second of the whole run, so that methods compare fairly: the Trainer's own figure for a cached probe
        # counts only the head's steps on precomputed features.
        "train_samples_per_second": round(rows * loaded.recipe.train.epochs / train["train_wall_seconds"], 2),
        "eval": metrics["eval"],
        "test": test,
    }


def _key(cell: dict[str, Any]) -> tuple[str, int, int]:
    return (cell["method"], cell["train_size"], cell["seed"])


def _open_record(path: Path, loaded: LoadedRecipe, info: dict[str, Any]) -> dict[str, Any]:
    """compare.json, started or resumed; finished cells count only for the same resolved recipe."""
    resolved = loaded.recipe.model_dump(mode="json")
    if not path.exists():
        return {"info": info, "resolved_recipe": resolved, "cells": []}
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UserError(f"{path}: not valid JSON ({err}); delete it or choose another --output-dir") from err
    if record.get("resolved_recipe") != resolved:
        raise UserError(f"{path} was made with a different recipe or overrides; choose another --output-dir")
    if bool(record.get("info", {}).get("per_class")) != bool(info.get("per_class")):
        raise UserError(
            f"{path}: its sizes count {'all' if info.get('per_class') else 'per-class'} examples; "
            "run with the same --per-class setting, or choose another --output-dir"
        )
    record["info"] = info
    return record


def _write_json(path: Path, data: Any) -> None:
    """Through a temporary file and a rename: a crash never leaves a half-written compare.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(staging, path)


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")
