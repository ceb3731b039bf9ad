"""The figures of a run, as PNG files: training curves for every run, and each task's view of its eval predictions
(views.py). Drawn with matplotlib's object API on the Agg canvas, so nothing touches pyplot's global state or needs
a display."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DPI = 110


def _figure(width: float, height: float, rows: int = 1, sharex: bool = False) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(rows, 1, squeeze=False, sharex=sharex)[:, 0]


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    return path


def curves(
    runs: dict[str, list[dict[str, Any]]],
    metric: str,
    path: Path,
    kept: dict[str, int | None] | None = None,
    baseline: float | None = None,
) -> Path:
    """Training loss per logging step and eval loss per evaluation (top), the eval metric per evaluation (bottom),
    for one run or several (overlaid), on one step axis shared by both panels. A run's phases follow each other on
    the step axis, their boundaries marked; the kept checkpoint is starred; `baseline` (the trivial baseline's
    score on the metric) is a dashed line on the metric panel."""
    return _save(curves_figure(runs, metric, kept, baseline), path)


def curves_figure(
    runs: dict[str, list[dict[str, Any]]],
    metric: str,
    kept: dict[str, int | None] | None = None,
    baseline: float | None = None,
) -> Any:
    """The matplotlib Figure that `curves` saves."""
    figure, (losses, scores) = _figure(8, 6, rows=2, sharex=True)
    for index, (name, history) in enumerate(runs.items()):
        color = f"C{index}"
        label = f"{name}: " if len(runs) > 1 else ""
        offset, offsets = 0, {}
        for phase in dict.fromkeys(e.get("phase", "train") for e in history):
            offsets[phase] = offset
            offset += max((e.get("step", 0) for e in history if e.get("phase", "train") == phase), default=0)
        step = {id(e): offsets[e.get("phase", "train")] + e.get("step", 0) for e in history}
        train = [e for e in history if "loss" in e]
        evals = [e for e in history if "eval_loss" in e]
        losses.plot(
            [step[id(e)] for e in train],
            [e["loss"] for e in train],
            color=color,
            alpha=0.6,
            lw=1,
            label=f"{label}training loss",
        )
        losses.plot(
            [step[id(e)] for e in evals],
            [e["eval_loss"] for e in evals],
            color=color,
            marker="o",
            lw=2,
            label=f"{label}eval loss",
        )
        scored = [e for e in evals if f"eval_{metric}" in e]
        scores.plot(
            [step[id(e)] for e in scored],
            [e[f"eval_{metric}"] for e in scored],
            color=color,
            marker="o",
            label=f"{name}" if len(runs) > 1 else f"eval {metric}",
        )
        for phase, start in offsets.items():
            if len(offsets) > 1 and start > 0:
                for axes in (losses, scores):
                    axes.axvline(start, color="grey", ls="--", lw=0.8)
                losses.annotate(phase, (start, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)
        kept_step = (kept or {}).get(name)
        if kept_step is not None:
            best = [e for e in scored if e.get("step") == kept_step and e.get("phase") == list(offsets)[-1]]
            for e in best:
                scores.plot(
                    [step[id(e)]], [e[f"eval_{metric}"]], marker="*", ms=16, color=color, ls="", label="kept checkpoint"
                )
    if baseline is not None:
        scores.axhline(baseline, color="grey", ls=":", lw=1.5, label=f"trivial baseline ({baseline:.4f})")
    losses.set(xlabel="optimizer step", ylabel="loss", title="training and eval loss")
    scores.set(xlabel="optimizer step", ylabel=f"eval {metric}", title=f"eval {metric}")
    losses.tick_params(labelbottom=True)  # shared axis: matplotlib hides the top panel's step numbers otherwise
    for axes in (losses, scores):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return figure


def confusion(gold: np.ndarray, predicted: np.ndarray, names: list[str], path: Path) -> Path:
    """Rows: the true class; each row normalised to 1 (the share of that class predicted as each class)."""
    k = len(names)
    counts = np.zeros((k, k))
    np.add.at(counts, (gold, predicted), 1)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(12, 3 + 0.45 * k)
    figure, (axes,) = _figure(size, size)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(k), names, rotation=60 if k > 4 else 0, ha="right" if k > 4 else "center", fontsize=8)
    axes.set_yticks(range(k), names, fontsize=8)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                axes.text(
                    j,
                    i,
                    f"{shares[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shares[i, j] > 0.5 else "black",
                )
    axes.set(xlabel="predicted", ylabel="true", title="confusion (each true class's row sums to 1)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    return _save(figure, path)


def calibration(confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = 10) -> tuple[Path, float]:
    """Reliability diagram: accuracy against confidence in equal-width bins, and the expected calibration error
    (the bins' |accuracy - confidence| weighted by their share of the predictions)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    figure, (axes,) = _figure(5, 5)
    ece, centres, accuracies, counts = 0.0, [], [], []
    for b in range(bins):
        chosen = which == b
        if not chosen.any():
            continue
        accuracy, mean_confidence = float(correct[chosen].mean()), float(confidence[chosen].mean())
        ece += chosen.mean() * abs(accuracy - mean_confidence)
        centres.append((edges[b] + edges[b + 1]) / 2)
        accuracies.append(accuracy)
        counts.append(int(chosen.sum()))
    axes.bar(centres, accuracies, width=1 / bins, edgecolor="black", alpha=0.7, label="accuracy in the bin")
    axes.plot([0, 1], [0, 1], color="grey", ls="--", label="perfectly calibrated")
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence (probability of the predicted class)",
        ylabel="accuracy",
        title=f"calibration: expected calibration error {ece:.3f}",
    )
    axes.legend(fontsize=8)
    return _save(figure, path), float(ece)


def bars(names: Sequence[str], values: Sequence[float], path: Path, *, title: str, ylabel: str) -> Path:
    """One bar per name (per-label F1, scores by answer length, ...)."""
    figure, (axes,) = _figure(max(5, 0.35 * len(names) + 2), 4)
    axes.bar(range(len(names)), values, color="C0")
    axes.set_xticks(range(len(names)), list(names), rotation=60 if len(names) > 6 else 0, ha="right", fontsize=8)
    axes.set(title=title, ylabel=ylabel, ylim=(0, max(1.0, max(values, default=1.0))))
    axes.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def scatter(true: np.ndarray, predicted: np.ndarray, path: Path, *, title: str) -> Path:
    """Predicted against true values (regression), with the diagonal a perfect model would lie on."""
    figure, (axes,) = _figure(5, 5)
    axes.scatter(true, predicted, s=6, alpha=0.4)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", ls="--")
    axes.set(xlabel="true", ylabel="predicted", title=title)
    return _save(figure, path)
