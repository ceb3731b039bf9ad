"""compare's outputs: cells aggregated into rows (mean and std over seeds), compare.md (the table, the trivial
baseline (the best constant answer on the eval split), a verdict per training size) and learning_curve.png."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.recipe import lower_is_better

BASELINE_NAME = "best constant answer (baseline)"
BASELINE_MARGIN = 0.01  # a best mean within this of the baseline has not learned the task (diagnostics' margin)


@dataclass(frozen=True)
class Row:
    """One (method, train size) of the table: the cells of every seed, aggregated."""

    method: str
    train_size: int
    seeds: int
    mean: float
    std: float | None  # sample standard deviation (n - 1) over seeds; None with one seed
    test_mean: float | None
    trainable_parameters: int
    total_parameters: int
    train_seconds: float
    samples_per_second: float
    learning_rate: str
    baseline: float | None = None  # the best constant answer's eval metric (mean over seeds), where the task has one


def learning_rate_label(rates: dict[str, Any]) -> str:
    if "probe_learning_rate" in rates:
        return f"{rates['probe_learning_rate']:g} then {rates['learning_rate']:g}"
    if rates.get("head_learning_rate") is not None:  # contrastive: the encoder on pairs, then the head
        return f"{rates['learning_rate']:g} then head {rates['head_learning_rate']:g}"
    return f"{rates['learning_rate']:g}"


def aggregate(cells: list[dict[str, Any]]) -> list[Row]:
    """One row per (method, train size), ordered by size then by the order methods first appear."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["method"], cell["train_size"]), []).append(cell)
    order = list(dict.fromkeys(cell["method"] for cell in cells))
    rows = []
    for (method, size), group in sorted(groups.items(), key=lambda item: (item[0][1], order.index(item[0][0]))):
        values = [float(cell["value"]) for cell in group]
        tests = [float(cell["test_value"]) for cell in group if cell.get("test_value") is not None]
        rows.append(
            Row(
                method=method,
                train_size=size,
                seeds=len(group),
                mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else None,
                test_mean=statistics.fmean(tests) if len(tests) == len(group) else None,
                trainable_parameters=group[0]["trainable_parameters"],
                total_parameters=group[0]["total_parameters"],
                train_seconds=statistics.fmean(float(cell["train_wall_seconds"]) for cell in group),
                samples_per_second=statistics.fmean(float(cell["train_samples_per_second"]) for cell in group),
                learning_rate=learning_rate_label(group[0]),
                baseline=_mean([cell.get("baseline") for cell in group]),
            )
        )
    return rows


def markdown_table(rows: list[Row], metric: str, per_class: bool = False) -> str:
    with_test = any(row.test_mean is not None for row in rows)
    examples = "train examples per class" if per_class else "train examples"
    header = ["method", examples, f"eval {metric} (mean ± std)"] + ([f"test {metric} (mean)"] * with_test)
    header += ["trainable parameters", "train time (s)", "train samples/s (wall)", "learning rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        spread = f"{row.std:.4f}" if row.std is not None else "-"
        share = 100 * row.trainable_parameters / row.total_parameters if row.total_parameters else 0.0
        cells = [row.method, f"{row.train_size:,}", f"{row.mean:.4f} ± {spread}"]
        cells += [f"{row.test_mean:.4f}" if row.test_mean is not None else "-"] * with_test
        cells += [f"{row.trainable_parameters:,} ({share:.3g}%)", f"{row.train_seconds:.1f}"]
        cells += [f"{row.samples_per_second:.1f}", row.learning_rate]
        lines.append("| " + " | ".join(cells) + " |")
        last_of_size = row is rows[-1] or rows[rows.index(row) + 1].train_size != row.train_size
        baseline = baseline_at(rows, row.train_size)
        if last_of_size and baseline is not None:
            blank = ["-"] * (len(header) - 3)
            lines.append(f"| {BASELINE_NAME} | {row.train_size:,} | {baseline:.4f} | " + " | ".join(blank) + " |")
    return "\n".join(lines) + "\n"


def baseline_at(rows: list[Row], size: int) -> float | None:
    """The trivial baseline of a training size (for classification the best constant answer on the eval rows every
    method is scored on): the mean over the cells that recorded one."""
    found = [row.baseline for row in rows if row.train_size == size and row.baseline is not None]
    return sum(found) / len(found) if found else None


def verdicts(rows: list[Row], metric: str, per_class: bool = False) -> list[str]:
    """One line per train size: the best method, and its margin over scratch when scratch ran."""
    sign = -1.0 if lower_is_better(metric) else 1.0  # loss, mse, mae: lower is better, as for checkpoints
    lines = []
    each = " per class" if per_class else ""
    for size in sorted({row.train_size for row in rows}):
        here = [row for row in rows if row.train_size == size]
        best = max(here, key=lambda row: sign * row.mean)
        top = [row.method for row in here if row.mean == best.mean]  # a tie is said, not settled by list order
        leader = f"{best.method} is best" if len(top) == 1 else f"{', '.join(top)} tie"
        line = f"- {size:,} examples{each}: {leader} ({metric} {best.mean:.4f})"
        baseline = baseline_at(rows, size)
        if baseline is not None and sign * (best.mean - baseline) <= BASELINE_MARGIN:
            lines.append(
                f"- {size:,} examples{each}: no method beats the best constant answer on the eval split ({metric} "
                f"{baseline:.4f}); the best, {best.method}, reaches {best.mean:.4f}: none has learned the task"
            )
            continue
        if baseline is not None:
            line += f", {sign * (best.mean - baseline):.4f} above the best constant answer ({baseline:.4f})"
        scratch = next((row for row in here if row.method == "scratch"), None)
        if scratch is not None and scratch.method not in top:
            margin = sign * (best.mean - scratch.mean)
            line += f", {margin:.4f} better than scratch ({scratch.mean:.4f})"
            if margin <= max(best.std or 0.0, scratch.std or 0.0):
                line += "; within one seed std, not a clear win"
        elif scratch is not None and len(here) > 1:
            line += ": transfer did not beat training from scratch here"
        lines.append(line)
    return lines


def markdown_report(rows: list[Row], info: dict[str, Any]) -> str:
    metric, seeds, per_class = info["metric"], info["seeds"], bool(info.get("per_class"))
    held_out = " (held out from train, a different draw for each seed)" if info["eval_held_out"] else ""
    test = f"{info['test_rows']:,} rows" if info.get("test_rows") is not None else "none"
    header = [
        f"# compare: {info['name']}",
        "",
        f"- recipe: `{info['recipe']}` (model `{info['model']}`)",
        f"- main metric: eval {metric} (train.metric_for_best); "
        f"{'lower' if lower_is_better(metric) else 'higher'} is better",
        f"- eval data: {info['eval_rows']:,} rows{held_out}; test data: {test}",
        f"- training pool: {info['train_pool']:,} rows; each run takes a seeded random subset of its size"
        + (f" per label ({info['labels']} labels, class-balanced)" if per_class else ""),
        f"- seeds: {len(seeds)} ({', '.join(map(str, seeds))}); ± is the sample std over seeds (n - 1), "
        "'± -' means one seed (no spread)",
        "",
    ]
    table, verdict = markdown_table(rows, metric, per_class), verdicts(rows, metric, per_class)
    return "\n".join([*header, table, "Verdict:", "", *verdict]) + "\n"


def plot_learning_curve(
    rows: list[Row], path: Path, title: str, ylabel: str, xlabel: str = "labelled training examples"
) -> bool:
    """metric vs training examples, one line per method with std error bars; False when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # a bare Figure renders with Agg and leaves pyplot's state alone
    except ImportError:
        return False
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for method in dict.fromkeys(row.method for row in rows):
        mine = [row for row in rows if row.method == method]
        axes.errorbar(
            [row.train_size for row in mine],
            [row.mean for row in mine],
            yerr=[row.std or 0.0 for row in mine],
            marker="o",
            capsize=3,
            label=method,
        )
    sizes = [row.train_size for row in rows]
    baselines = [(size, baseline_at(rows, size)) for size in sorted(set(sizes))]
    shown = [(size, value) for size, value in baselines if value is not None]
    if shown:
        axes.plot(*zip(*shown, strict=True), color="grey", ls="--", marker="_", label=BASELINE_NAME)
    if max(sizes) > 10 * min(sizes):
        axes.set_xscale("log")
    ticks = sorted(set(sizes))
    axes.set_xticks(ticks, [f"{size:,}" for size in ticks])  # the sizes that ran, not 2x10^1
    axes.minorticks_off()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def _mean(values: list[Any]) -> float | None:
    found = [float(v) for v in values if isinstance(v, int | float)]
    return statistics.fmean(found) if found else None
