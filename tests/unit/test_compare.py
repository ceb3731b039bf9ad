"""`nlp-transfer compare` end to end on a tiny BERT (the grid, resuming, bad input) and its aggregation by hand."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlp_transfer.cli import app
from nlp_transfer.studies.compare_report import aggregate, markdown_table, verdicts
from tests.conftest import write_recipe

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.heavy  # over 20 s of tiny-model training: make test runs it, make test-fast does not
def test_compare_runs_the_grid_writes_table_and_plot_and_resumes(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    # 96 rows: 10% held out for eval leaves 86 to draw 24 and 48 from. The recipe's own method is full, so both
    # scratch and probe get their recommended learning rates.
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"seed": 7})
    out = tmp_path / "cmp"
    command = ["compare", str(recipe), "--methods", "scratch,probe", "--train-sizes", "48,24", "--seeds", "2"]
    command += ["--output-dir", str(out)]

    first = CliRunner().invoke(app, command)
    assert first.exit_code == 0, first.output

    record = json.loads((out / "compare.json").read_text())
    cells = record["cells"]
    assert len(cells) == 8
    assert {(c["method"], c["train_size"], c["seed"]) for c in cells} == {
        (m, n, s) for m in ("scratch", "probe") for n in (24, 48) for s in (7, 8)
    }
    assert {c["method"]: c["learning_rate"] for c in cells} == {"scratch": 1e-4, "probe": 1e-3}
    for cell in cells:
        assert 0.0 <= cell["value"] <= 1.0 and cell["value"] == cell["eval"]["eval_accuracy"]
        assert 0 < cell["trainable_parameters"] <= cell["total_parameters"]
        assert cell["train_wall_seconds"] > 0 and cell["train_samples_per_second"] > 0
    probe = next(c for c in cells if c["method"] == "probe")
    scratch = next(c for c in cells if c["method"] == "scratch")
    assert probe["trainable_parameters"] < scratch["trainable_parameters"]  # the encoder is frozen

    report = (out / "compare.md").read_text()
    for method in ("scratch", "probe"):
        for size in (24, 48):
            assert any(line.startswith(f"| {method} | {size} | ") and "±" in line for line in report.splitlines())
    assert "Verdict" in report
    # The best constant answer on the eval split: a row per size, and the verdict measures the best method against it.
    for size in (24, 48):
        assert any(line.startswith(f"| best constant answer (baseline) | {size} | 0.") for line in report.splitlines())
    assert "best constant answer" in report.split("Verdict:")[1]
    assert all(c["baseline"] is not None and 0 < c["baseline"] < 1 for c in cells)
    assert (out / "learning_curve.png").read_bytes().startswith(PNG_SIGNATURE)
    assert not (out / "runs").exists()  # no --keep-runs: every run folder (a model each) is deleted
    assert "| probe | 24 |" in first.output  # the table is printed at the end too

    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0, again.output
    assert again.output.count("skipping, already in compare.json") == 8
    assert "training (learning rate" not in again.output
    assert json.loads((out / "compare.json").read_text())["cells"] == cells


@pytest.mark.parametrize(
    ("option", "value", "mentions"),
    [
        ("--methods", "full,lorra", ["'lorra'", "'lora'"]),
        ("--train-sizes", "0", ["'0'", "--train-sizes"]),
        ("--train-sizes", "abc", ["'abc'", "--train-sizes"]),
        ("--train-sizes", "10,-5", ["'-5'"]),
    ],
)
def test_bad_grid_options_are_one_line_errors(
    option: str, value: str, mentions: list[str], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, "unused-model", sentiment_csv)  # rejected before any model is resolved
    result = CliRunner().invoke(app, ["compare", str(recipe), option, value, "--output-dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for text in mentions:
        assert text in lines[0]
    assert not (tmp_path / "x").exists()


def _cell(method: str, size: int, seed: int, value: float, test: float | None = None) -> dict:
    return {
        "method": method,
        "train_size": size,
        "seed": seed,
        "learning_rate": 1e-3,
        "value": value,
        "test_value": test,
        "trainable_parameters": 10 if method == "probe" else 1000,
        "total_parameters": 1000,
        "train_wall_seconds": 2.0 + seed,
        "train_samples_per_second": 50.0 * (seed + 1),
    }


def test_aggregate_mean_and_sample_std_over_seeds() -> None:
    cells = [_cell("scratch", 100, s, v) for s, v in enumerate([0.5, 0.6, 0.7])]
    cells += [_cell("probe", 100, s, v) for s, v in enumerate([0.8, 0.9, 0.85])]
    cells += [_cell("probe", 10, 0, 0.55)]  # one seed: no spread

    rows = aggregate(cells)

    assert [(r.method, r.train_size) for r in rows] == [("probe", 10), ("scratch", 100), ("probe", 100)]
    scratch, probe = rows[1], rows[2]
    assert scratch.mean == pytest.approx(0.6) and scratch.std == pytest.approx(0.1)  # sample std (n - 1)
    assert probe.mean == pytest.approx(0.85) and probe.std == pytest.approx(statistics.stdev([0.8, 0.9, 0.85]))
    assert probe.std == pytest.approx(0.05)
    assert rows[0].std is None and rows[0].seeds == 1
    assert scratch.train_seconds == pytest.approx(3.0) and scratch.samples_per_second == pytest.approx(100.0)
    assert scratch.test_mean is None

    table = markdown_table(rows, "accuracy")
    assert "| scratch | 100 | 0.6000 ± 0.1000 | 1,000 (100%) | 3.0 | 100.0 | 0.001 |" in table
    assert "| probe | 10 | 0.5500 ± - | 10 (1%) |" in table
    assert verdicts(aggregate([_cell("scratch", 5, 0, 0.5), _cell("probe", 5, 0, 0.5)]), "accuracy") == [
        "- 5 examples: scratch, probe tie (accuracy 0.5000): transfer did not beat training from scratch here"
    ]
    assert "test accuracy" not in table  # no test split, no column
    assert verdicts(rows, "accuracy")[1] == (
        "- 100 examples: probe is best (accuracy 0.8500), 0.2500 better than scratch (0.6000)"
    )


def test_verdict_for_loss_prefers_lower_and_flags_a_win_inside_the_spread() -> None:
    cells = [_cell("scratch", 50, s, v, test=v) for s, v in enumerate([0.70, 0.50])]
    cells += [_cell("full", 50, s, v, test=v) for s, v in enumerate([0.57, 0.55])]

    rows = aggregate(cells)

    assert rows[0].test_mean == pytest.approx(0.6) and rows[1].test_mean == pytest.approx(0.56)
    assert "test loss (mean)" in markdown_table(rows, "loss")
    (line,) = verdicts(rows, "loss")
    assert (
        line.startswith("- 50 examples: full is best (loss 0.5600), 0.0400 better than scratch")
        and "not a clear win" in line
    )


def test_no_method_is_called_best_below_the_best_constant_answer() -> None:
    """compare once called a method "best" at 44% accuracy where always answering the majority class gave 57%."""
    cells = [{**_cell("full", 100, s, v), "baseline": 0.57} for s, v in enumerate([0.44, 0.45])]
    cells += [{**_cell("probe", 100, s, v), "baseline": 0.57} for s, v in enumerate([0.50, 0.52])]
    cells += [{**_cell("full", 1000, s, v), "baseline": 0.55} for s, v in enumerate([0.80, 0.82])]
    rows = aggregate(cells)
    lines = verdicts(rows, "accuracy")
    assert lines[0].startswith(
        "- 100 examples: no method beats the best constant answer on the eval split (accuracy 0.5700)"
    )
    assert "is best" not in lines[0]
    assert (
        lines[1] == "- 1,000 examples: full is best (accuracy 0.8100), 0.2600 above the best constant answer (0.5500)"
    )
    table = markdown_table(rows, "accuracy")
    assert "| best constant answer (baseline) | 100 | 0.5700 |" in table
    assert "| best constant answer (baseline) | 1,000 | 0.5500 |" in table


def test_compare_with_contrastive_cells_prints_one_line_per_cell(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A contrastive head evaluates every epoch: a cell once printed a line per evaluation (about 50)."""
    from tests.unit.test_contrastive import fewshot_recipe

    recipe = fewshot_recipe(tmp_path, tiny_models["bert"], head_epochs=12)
    command = ["compare", str(recipe), "--methods", "contrastive", "--output-dir", str(tmp_path / "cmp")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    cell_lines = [line for line in result.output.splitlines() if line.startswith("[1/1]")]
    assert len(cell_lines) <= 3, cell_lines  # training, the result, perhaps a note
    assert "eval loss" not in result.output.replace("note: over-fitting: eval loss", "")


def test_over_fitting_is_seen_when_eval_loss_climbs_at_flat_accuracy() -> None:
    """compare's contrastive cells: eval loss 0.66 -> 2.32 at flat accuracy, the head's training loss logged too
    rarely to fall inside the window. The check that single runs have sees it."""
    from nlp_transfer.report.diagnostics import diagnose

    history = [{"step": 1, "loss": 0.7}]
    for step, loss in zip((10, 20, 30, 40), (0.66, 0.9, 1.5, 2.32), strict=True):
        history.append({"step": step, "eval_loss": loss, "eval_accuracy": 0.5})

    def diagnosed(final: dict[str, float]) -> dict:
        settings = {"best_checkpoint": None, "planned_steps": 40, "early_stopping_patience": None, "baseline": None}
        return diagnose(history, metric="accuracy", final=final, **settings)

    found = diagnosed({"eval_accuracy": 0.5})
    assert found["overfitting"]["from_step"] == 10
    assert "stayed at 0.5000" in found["overfitting"]["message"]
    history[1:] = [{**e, "eval_accuracy": 0.5 + e["step"] / 100} for e in history[1:]]  # accuracy climbing too
    assert "overfitting" not in diagnosed({})
