"""The shipped domain-adaptation recipe end to end on the real all-MiniLM-L6-v2 and real data, at the benchmark's
--quick sizes (a few minutes: marked slow; scripts/bench_domain.py measures the real thing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import invoke

REPO = Path(__file__).resolve().parents[2]
QUICK = [
    "data.max_train_samples=400",
    "data.max_eval_samples=200",
    "adapt.target.max_corpus_samples=200",
    "adapt.target.max_test_samples=200",
    "adapt.stages.0.max_steps=3",
]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_movies_to_products_table(tmp_path: Path, minilm: Path) -> None:
    overrides = [arg for override in QUICK for arg in ("-o", override)]
    result = invoke("adapt", REPO / "recipes" / "movies_to_products_minilm.yaml", *overrides, "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    rows = {row["row"]: row for row in json.loads((tmp_path / "adapt_table.json").read_text())["rows"]}
    assert list(rows) == ["source-only", "+continued pre-training", "+self-training", "both"]
    for row in rows.values():
        assert row["source_accuracy"] > 0.6  # 400 SST-2 sentences already teach MiniLM sentiment
        assert row["target_accuracy"] > 0.55
    pretrain = json.loads((tmp_path / "stages" / "pretrain" / "stage.json").read_text())["metrics"]
    assert pretrain["masked_positions_only"] and pretrain["lm_eval_loss_after"] < pretrain["lm_eval_loss_before"]
