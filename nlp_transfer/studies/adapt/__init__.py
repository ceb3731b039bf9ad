"""Unlabelled domain adaptation: continued pre-training on target text, supervised fine-tuning on the labelled
source, self-training on the target, chained as stages (chain.py runs and reuses them, stages.py is what each does)
and compared in one table (`nlp-transfer adapt`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.recipe import LoadedRecipe
from nlp_transfer.studies.adapt.chain import AdaptOptions, chain_rows, output_dir, run_rows
from nlp_transfer.studies.adapt.table import save_table


@dataclass
class AdaptResult:
    folder: Path
    table: str  # markdown
    rows: list[dict[str, Any]]


def run_adaptation(loaded: LoadedRecipe, options: AdaptOptions, all_rows: bool) -> AdaptResult:
    """The recipe's own chain (`run`), or every row its stages allow (`adapt`), as one saved table."""
    distributed.refuse_launch(
        "adapt", "its stages hand models and pseudo-labels from one to the next through files of one process"
    )
    if loaded.recipe.adapt is None:
        raise UserError(f"{loaded.path}: no adapt section; add adapt: {{target: ..., stages: [...]}} (see recipes/)")
    rows = run_rows(loaded, chain_rows(loaded.recipe.adapt, all_rows), options)
    folder = output_dir(loaded, options)
    return AdaptResult(folder=folder, table=save_table(folder, rows), rows=rows)


__all__ = ["AdaptOptions", "AdaptResult", "run_adaptation"]
