"""The shipped domain-adaptation recipe end to end on the real all-MiniLM-L6-v2 and real data, through
`scripts/bench_domain.py --quick` (tiny sizes, a few minutes: marked slow; the full benchmark measures the real
thing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_domain_quick(tmp_path: Path, minilm: Path) -> None:
    bench = [sys.executable, str(REPO / "scripts" / "bench_domain.py"), "--quick", "--out", str(tmp_path)]
    done = subprocess.run(bench, capture_output=True, text=True, env={**os.environ}, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best label-free row:" in done.stdout
    runs = json.loads((tmp_path / "quick" / "summary.json").read_text())["runs"]
    assert [r["row"] for r in runs] == ["source-only", "+continued pre-training", "+self-training", "both"]
    for row in runs:
        assert row["source_accuracy"] > 0.6  # 1,000 SST-2 sentences, 2 epochs, already teach MiniLM sentiment
        assert row["target_accuracy"] > 0.55
    pretrain = json.loads((tmp_path / "quick" / "electronics-s0" / "stages" / "pretrain" / "stage.json").read_text())
    assert pretrain["metrics"]["masked_positions_only"]
    assert pretrain["metrics"]["lm_eval_loss_after"] < pretrain["metrics"]["lm_eval_loss_before"]
