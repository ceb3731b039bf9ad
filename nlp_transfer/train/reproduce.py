"""`nlp-transfer run RUN_DIR --reproduce`: train again from the recipe a run recorded, then compare.

What could make the numbers differ is checked first and said: a data file whose sha256 changed (or that is gone),
and library versions other than those recorded. The comparison lists every eval/test metric of both runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import sha256_file
from nlp_transfer.runfolder.folder import ENVIRONMENT_FILE, METRICS_FILE, require_complete
from nlp_transfer.runfolder.record import LIBRARIES, library_version
from nlp_transfer.train.pipeline import RunOptions, RunResult, run
from nlp_transfer.train.resume import read_record, recorded_recipe


def reproduce(run_dir: Path, output_dir: Path | None) -> tuple[RunResult, list[str]]:
    require_complete(run_dir)
    loaded = recorded_recipe(run_dir, command="--reproduce")
    environment = read_record(run_dir, ENVIRONMENT_FILE, "--reproduce")
    original = read_record(run_dir, METRICS_FILE, "--reproduce")  # read now: a missing one must not cost a training
    versions = differences_before(environment)
    target = output_dir or run_dir.with_name(f"{run_dir.name}-reproduced-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    result = run(loaded, RunOptions(output_dir=target))
    notes = [f"not as recorded: {', '.join(versions)}", ""] if versions else []
    return result, notes + compare_metrics(original, result.metrics)


def differences_before(environment: dict[str, Any]) -> list[str]:
    """Refuses changed or missing data files; returns the library versions other than the recorded ones."""
    changed = []
    for path, digest in environment.get("data_file_sha256", {}).items():
        if not Path(path).is_file():
            changed.append(f"data file {path} is gone")
        elif sha256_file(Path(path)) != digest:
            changed.append(f"data file {path} changed since the run (sha256 differs)")
    if changed:
        raise UserError(f"--reproduce: {'; '.join(changed)}; the run cannot be reproduced with other data")
    recorded = environment.get("libraries", {})
    return [
        f"{name} {library_version(name)} (the run used {recorded.get(name)})"
        for name in LIBRARIES
        if recorded.get(name) != library_version(name)
    ]


def compare_metrics(original: dict[str, Any], again: dict[str, Any]) -> list[str]:
    """A markdown table of every numeric eval/test metric (runtimes left out: they are not reproducible)."""
    rows = ["| metric | original | reproduced | difference |", "|---|---|---|---|"]
    differing = 0
    for split in ("eval", "test"):
        for name, value in original.get(split, {}).items():
            if not isinstance(value, int | float) or name.endswith(("runtime", "per_second")):
                continue
            other = again.get(split, {}).get(name)
            difference = other - value if isinstance(other, int | float) else None
            differing += difference != 0
            shown = f"{difference:+.3g}" if difference is not None else "missing"
            rows.append(f"| {name} | {value:.6g} | {other if other is None else f'{other:.6g}'} | {shown} |")
    verdict = "identical" if differing == 0 else f"{differing} metrics differ"
    return [*rows, "", f"metrics: {verdict}"]
