"""The shipped domain-adaptation recipe end to end on the real all-MiniLM-L6-v2 and real data, through
`scripts/bench_domain.py --quick` (tiny sizes, a few minutes: marked slow; the full benchmark measures the real
thing): source-only, prior correction, self-training with uniform and with estimated proportions."""

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
    rows = "source-only,+prior correction,+continued pre-training,+self-training,+self-training +prior correction"
    bench = [
        sys.executable,
        str(REPO / "scripts" / "bench_domain.py"),
        "--quick",
        "--out",
        str(tmp_path),
        "--rows",
        rows,
    ]
    done = subprocess.run(bench, capture_output=True, text=True, env={**os.environ}, timeout=1800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "## targets" in done.stdout and "SST-2 dev never more than 1 point below" in done.stdout
    runs = json.loads((tmp_path / "quick" / "summary.json").read_text())["runs"]
    assert [r["row"] for r in runs] == [
        "source-only",
        "+prior correction",
        "+self-training (uniform)",
        "+continued pre-training",
        "+self-training",
        "+self-training +prior correction",
    ]
    for row in runs:
        assert row["source_accuracy"] > 0.6  # 1,000 SST-2 sentences, 2 epochs, already teach MiniLM sentiment
        assert row["target_accuracy"] > 0.55
        assert 0 < row["target_estimated_prior"]["positive"] < 1
    # SST-2 sentences against electronics reviews: the label-shift test rejects the estimate, so the corrections
    # are not applied (the rows predict as the models they copy) and self-training took uniform proportions.
    by_row = {r["row"]: r for r in runs}
    assert by_row["source-only"]["label_shift_test"]["rejects_label_shift"]
    assert by_row["+prior correction"]["target_accuracy"] == by_row["source-only"]["target_accuracy"]
    corrected = tmp_path / "quick" / "electronics-s0" / "stages" / "finetune+self_train+prior_correction"
    assert not (corrected / "label_prior.json").exists()
    assert json.loads((corrected / "metrics.json").read_text())["prior_correction"]["applied"] is False
    assert "label-shift test" in done.stdout and "rejected (" in done.stdout
    self_train = tmp_path / "quick" / "electronics-s0" / "stages" / "finetune+self_train" / "stage.json"
    (round1,) = json.loads(self_train.read_text())["metrics"]["rounds"]
    assert round1["proportions"].startswith("uniform: the estimate is not used")
    # The uniform row reused the source-only stage of the main folder instead of training it again.
    assert by_row["+self-training (uniform)"]["reused"] == ["finetune"]
    pretrain = json.loads((tmp_path / "quick" / "electronics-s0" / "stages" / "pretrain" / "stage.json").read_text())
    assert pretrain["metrics"]["masked_positions_only"]
    assert pretrain["metrics"]["lm_eval_loss_after"] < pretrain["metrics"]["lm_eval_loss_before"]
