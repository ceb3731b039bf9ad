"""Stages chained into models, run once and reused (`nlp-transfer adapt`, or `run` on a recipe with an adapt
section). What each stage does is stages.py.

A chain is a prefix-closed sequence of stages; its stage folders are named by the stages that made them, so chains
share what they have in common (source-only and +self-training share `finetune`):

    <out>/stages/pretrain/                   adapted encoder (a plain model folder) + stage.json
    <out>/stages/finetune/                   a normal run folder: the source-only classifier
    <out>/stages/pretrain+finetune/          the classifier fine-tuned from the adapted encoder
    <out>/stages/finetune+self_train/        round1/, round2/ (run folders), pseudo_labels-round<r>.jsonl
    <out>/stages/finetune+prior_correction/  the source-only classifier with label_prior.json (a run folder)
    <out>/adapt_table.md, adapt_table.json

Every input of every stage is read and checked before the first stage trains (check_inputs). Each stage folder's
stage.json (written last) records the hash of everything the stage depends on, the data files' contents included;
a stage whose stage.json has the same hash is not run again. Target labels (adapt.target.test) are read only by
evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_folder, read_json_or_empty
from nlp_transfer.data.assets import default_data_root
from nlp_transfer.recipe import AdaptSpec, LoadedRecipe, Recipe
from nlp_transfer.runfolder.folder import ADAPT_MARKER, RECIPE_FILE, RunFolder
from nlp_transfer.studies.adapt.corpus import TargetTexts, load_corpus, load_target_test
from nlp_transfer.studies.adapt.shift_test import MIN_TEXTS, ShiftTest, label_shift_test
from nlp_transfer.studies.adapt.stages import (
    RUNNERS,
    Outcome,
    Source,
    check_estimation,
    check_source,
    check_stage_inputs,
    check_stages_serve,
)

log = logging.getLogger(__name__)

STAGE_RECORD = "stage.json"
STARTED = "stages_started.json"  # chain -> inputs hash each stage folder was started with (resume only on a match)

# The rows of `nlp-transfer adapt`: name -> the stages of its chain. Rows whose stages the recipe lacks are left out.
ROWS: dict[str, tuple[str, ...]] = {
    "source-only": ("finetune",),
    "+prior correction": ("finetune", "prior_correction"),
    "+continued pre-training": ("pretrain", "finetune"),
    "+self-training": ("finetune", "self_train"),
    "+self-training +prior correction": ("finetune", "self_train", "prior_correction"),
    "both": ("pretrain", "finetune", "self_train"),
    "both +prior correction": ("pretrain", "finetune", "self_train", "prior_correction"),
}


@dataclass
class AdaptOptions:
    output_dir: Path | None = None
    overwrite: bool = False  # run every stage again, even those complete with the same inputs
    data_root: Path | None = None
    # Told what the user should know before the stages train (the CLI prints it); the table repeats it.
    on_warning: Callable[[str], None] | None = None


@dataclass
class Adaptation:
    """One adapt folder: the recipe, its target texts (read once), what the source data says (check_inputs)."""

    loaded: LoadedRecipe
    spec: AdaptSpec
    out_dir: Path
    options: AdaptOptions
    source: Source | None = None  # the labelled source data's label names and form, and its files' hashes

    @property
    def data_root(self) -> Path | None:
        return self.options.data_root or default_data_root()

    @cached_property
    def corpus(self) -> TargetTexts:  # read when first needed, then kept
        return load_corpus(self.spec.target, seed=self.seed, data_root=self.data_root, base_dir=self.loaded.path.parent)

    @cached_property
    def test(self) -> TargetTexts | None:
        return load_target_test(
            self.spec.target, seed=self.seed, data_root=self.data_root, base_dir=self.loaded.path.parent
        )

    @cached_property
    def shift_test(self) -> ShiftTest | None:
        """Does label shift hold between the source eval split and the corpus (shift_test.py)? None when
        adapt.label_shift.shift_test is off or the texts are too few to test; read after check_inputs."""
        source = self.source
        if source is None or self.spec.label_shift.shift_test == "off":
            return None
        k = len(source.label_names)
        return label_shift_test(source.eval_texts, source.eval_labels, self.corpus.texts, k, seed=self.seed)

    @property
    def seed(self) -> int:
        return self.loaded.recipe.train.seed

    @property
    def resume_hint(self) -> str:
        return f"nlp-transfer adapt {self.loaded.path} --output-dir {self.out_dir} (finished stages are reused)"


def output_dir(loaded: LoadedRecipe, options: AdaptOptions) -> Path:
    """A fixed folder (no timestamp), so running the recipe again finds and skips its finished stages."""
    recipe = loaded.recipe
    named = Path(recipe.output.dir) if recipe.output.dir else Path(recipe.output.root) / loaded.name
    out = options.output_dir or named
    if out.exists() and any(out.iterdir()) and not (out / ADAPT_MARKER).is_file():
        raise UserError(
            f"output folder {out} exists and is not an nlp-transfer adapt folder; choose another --output-dir or "
            "output.dir (it is never written into)"
        )
    check_output_folder(out, "--output-dir (or output.dir)")  # a file above it, an unwritable place: found now
    return out


def run_rows(loaded: LoadedRecipe, rows: dict[str, tuple[str, ...]], options: AdaptOptions) -> list[dict[str, Any]]:
    """Check every input, then run every row's chain (shared stages once); one table row per chain."""
    spec = loaded.recipe.adapt
    if spec is None:
        raise UserError(f"{loaded.path}: no adapt section; add adapt: {{target: ..., stages: [...]}}")
    out = output_dir(loaded, options)
    adaptation = Adaptation(loaded, spec, out, options)
    check_inputs(adaptation, {stage for chain in rows.values() for stage in chain})
    out.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(out)
    folder.write_json(ADAPT_MARKER, {"tool": "nlp-transfer adapt", "written_at": datetime.now(UTC).isoformat()})
    folder.write_text(RECIPE_FILE, loaded.to_yaml())
    done: dict[tuple[str, ...], Outcome] = {}
    table = []
    for row, stages in rows.items():
        outcomes = [_stage(adaptation, stages[: depth + 1], done) for depth in range(len(stages))]
        table.append(_table_row(row, outcomes))
    return table


def check_inputs(adaptation: Adaptation, stages: set[str]) -> None:
    """Read and check everything any stage will read, before the first one trains: the target corpus and test set,
    the labelled source data with the recipe's task, model and method, continued pre-training's settings, and
    what estimating the target prior needs (when a stage uses the estimate)."""
    check_stages_serve(stages, adaptation.loaded.recipe.task.name)  # before the corpus is read
    corpus, test = adaptation.corpus, adaptation.test
    check_stage_inputs(adaptation.loaded, adaptation.spec, stages, corpus)  # pretrain's, the first stage's
    if "finetune" in stages:
        adaptation.source = check_source(adaptation.loaded, adaptation.options.data_root, test)
        if check_estimation(adaptation.spec, stages, adaptation.source, corpus):
            warn_before_training(adaptation)


def warn_before_training(adaptation: Adaptation) -> None:
    """A stage will use the estimated prior: say now, not after the training, when the test rejects it."""
    found = adaptation.shift_test
    policy = adaptation.spec.label_shift.shift_test
    tell = adaptation.options.on_warning
    if tell is None or policy == "off" or (found is not None and not found.rejects_label_shift):
        return
    if found is None:
        tell(
            f"adapt.label_shift: the label-shift test needs {MIN_TEXTS} texts or more in both the source eval split "
            "and the corpus; it did not run, so the estimated target prior is used untested"
        )
        return
    consequence = {
        "require": "the estimated target prior will be reported but not used (prior_correction leaves the "
        "classifier as it is, proportions: estimated takes uniform ones); adapt.label_shift.shift_test: report "
        "uses it anyway",
        "report": "the estimated target prior is used anyway (adapt.label_shift.shift_test: report)",
    }[policy]
    tell(f"adapt.target.corpus: {found.finding()}: {consequence}")


def chain_rows(spec: AdaptSpec, all_rows: bool) -> dict[str, tuple[str, ...]]:
    """The recipe's own chain (run), or every row its stages allow (adapt: needs finetune)."""
    names = tuple(stage.name for stage in spec.stages)
    if not all_rows:
        return {" -> ".join(names): names}
    if "finetune" not in names:
        raise UserError("adapt.stages: the adapt table compares classifiers; add {name: finetune} to the stages")
    return {row: stages for row, stages in ROWS.items() if set(stages) <= set(names)}


def _stage(adaptation: Adaptation, chain: tuple[str, ...], done: dict[tuple[str, ...], Outcome]) -> Outcome:
    if chain in done:
        return done[chain]
    previous = done.get(chain[:-1])
    name = chain[-1]
    config = adaptation.spec.stage(name)
    folder = adaptation.out_dir / "stages" / "+".join(chain)
    inputs = inputs_hash(adaptation, chain)
    record = read_json_or_empty(folder / STAGE_RECORD)
    finished = record.get("inputs_hash") == inputs and Path(record.get("model_dir", "")).is_dir()
    if finished and not adaptation.options.overwrite:
        log.info("stage %s: complete with the same inputs, skipped", "+".join(chain))
        outcome = Outcome(
            name, Path(record["model_dir"]), record["start_model"], record["metrics"], record["seconds"], skipped=True
        )
    else:
        # A stage cut short with the same inputs continues (its runs resume from their checkpoints); otherwise it
        # starts again. What each stage started with is kept outside its folder: a run folder must start empty.
        started = read_json_or_empty(adaptation.out_dir / STARTED)
        same_inputs = started.get("+".join(chain)) == inputs and not adaptation.options.overwrite
        if folder.exists() and not same_inputs:
            log.info("stage %s: inputs changed; training it again", "+".join(chain))
            shutil.rmtree(folder)
        elif folder.exists():
            log.info("stage %s: unfinished with the same inputs; resuming it", "+".join(chain))
        folder.mkdir(parents=True, exist_ok=True)
        RunFolder(adaptation.out_dir).write_json(STARTED, {**started, "+".join(chain): inputs})
        clock = time.perf_counter()
        outcome = RUNNERS[name].run(adaptation, config, folder, previous)
        outcome.seconds = round(time.perf_counter() - clock, 1)
        RunFolder(folder).write_json(
            STAGE_RECORD,
            {
                "inputs_hash": inputs,
                "chain": list(chain),
                "model_dir": str(outcome.model_dir),
                "start_model": outcome.start_model,
                "metrics": outcome.metrics,
                "seconds": outcome.seconds,
            },
        )
    done[chain] = outcome
    return outcome


def inputs_hash(adaptation: Adaptation, chain: tuple[str, ...]) -> str:
    """Everything a stage's result depends on: the recipe (but not where output goes), its chain's stages, and the
    contents of the data files it reads (an edited corpus or source file is a new input, whatever its name)."""
    recipe: Recipe = adaptation.loaded.recipe
    raw = recipe.model_dump(mode="json", exclude={"output": True, "adapt": {"stages"}})
    raw["chain"] = [s.model_dump(mode="json") for s in adaptation.spec.stages if s.name in chain]
    test = adaptation.test
    raw["data_sha256"] = {
        "source": adaptation.source.file_hashes if adaptation.source is not None else {},
        "corpus": adaptation.corpus.file_hashes,
        "test": test.file_hashes if test is not None else {},
    }
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def _table_row(row: str, outcomes: list[Outcome]) -> dict[str, Any]:
    last = outcomes[-1].metrics
    keys = (
        "source_accuracy",
        "source_macro_f1",
        "target_accuracy",
        "target_macro_f1",
        "target_entropy",
        "target_balance",
        "target_predicted_shares",
        "target_estimated_prior",
        "target_prior_cross_check",
    )
    return {
        "row": row,
        "stages": [o.stage for o in outcomes],
        **{key: last.get(key) for key in keys},
        "seconds": round(sum(o.seconds for o in outcomes), 1),
        "model": str(outcomes[-1].model_dir),
        "reused": [o.stage for o in outcomes if o.skipped],
        "label_shift_test": (last.get("label_shift") or {}).get("shift_test"),
        "warnings": last.get("warnings", []),
    }
