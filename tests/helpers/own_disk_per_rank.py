"""`nlp-transfer` with a disk of its own per process, as on machines that share no filesystem: rank R works in
$OWN_DISKS/rankR, so a relative output folder is a different folder on each process. Launched by accelerate in
tests/unit/test_distributed_studies.py."""

from __future__ import annotations

import os
from pathlib import Path

from nlp_transfer.cli import app

own = Path(os.environ["OWN_DISKS"]) / f"rank{os.environ.get('RANK', '0')}"
own.mkdir(parents=True, exist_ok=True)
os.chdir(own)
app()
