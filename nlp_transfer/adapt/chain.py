"""Stages chained into models, and the table that compares them (`nlp-transfer adapt`, or `run` on a recipe with
an adapt section).

A chain is a prefix-closed sequence of stages; its stage folders are named by the stages that made them, so chains
share what they have in common (source-only and +self-training share `finetune`):

    <out>/stages/pretrain/                   adapted encoder (a plain model folder) + stage.json
    <out>/stages/finetune/                   a normal run folder: the source-only classifier
    <out>/stages/pretrain+finetune/          the classifier fine-tuned from the adapted encoder
    <out>/stages/finetune+self_train/        round1/, round2/ (run folders), pseudo_labels-round<r>.jsonl
    <out>/adapt_table.md, adapt_table.json

Each stage folder's stage.json (written last) records the hash of everything the stage depends on; a stage whose
stage.json has the same hash is not run again. Target labels (adapt.target.test) are read only by evaluation.
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

import numpy as np
from pydantic import ValidationError

from nlp_transfer.adapt.corpus import TargetTexts, load_corpus, load_target_test
from nlp_transfer.adapt.pretrain import continue_pretraining
from nlp_transfer.adapt.selftrain import select_pseudo_labels
from nlp_transfer.adapt.signals import class_probabilities, label_free_signals, target_metrics
from nlp_transfer.adapt.spec import AdaptSpec, PretrainStage, SelfTrainStage
from nlp_transfer.assets import default_data_root, resolve_model
from nlp_transfer.errors import UserError
from nlp_transfer.models import load_tokenizer
from nlp_transfer.recipe import LoadedRecipe, Recipe, describe_validation_error
from nlp_transfer.runfolder import RunFolder, read_status
from nlp_transfer.tasks.classification import gold_ids

log = logging.getLogger(__name__)

MARKER = "adapt_run.json"  # says a folder is an adapt output folder (never write into anyone else's)
STAGE_RECORD = "stage.json"
STARTED = "stages_started.json"  # chain -> inputs hash each stage folder was started with (resume only on a match)
CORPUS_PROBABILITIES = "corpus_probabilities.npy"  # (N, K) of the stage's classifier on the target corpus

# The rows of `nlp-transfer adapt`: name -> the stages of its chain. Rows whose stages the recipe lacks are left out.
ROWS: dict[str, tuple[str, ...]] = {
    "source-only": ("finetune",),
    "+continued pre-training": ("pretrain", "finetune"),
    "+self-training": ("finetune", "self_train"),
    "both": ("pretrain", "finetune", "self_train"),
}


@dataclass
class AdaptOptions:
    output_dir: Path | None = None
    overwrite: bool = False  # run every stage again, even those complete with the same inputs
    data_root: Path | None = None


@dataclass
class Outcome:
    """What a stage left: where its model is, what it started from, its metrics and time."""

    stage: str
    model_dir: Path  # what the next stage reads (adapted encoder, or a classifier run folder)
    start_model: str | None  # the weights supervised training started from (None: the recipe's model)
    metrics: dict[str, Any]
    seconds: float
    skipped: bool = False


@dataclass
class Adaptation:
    loaded: LoadedRecipe
    spec: AdaptSpec
    out_dir: Path
    options: AdaptOptions

    @property
    def data_root(self) -> Path | None:
        return self.options.data_root or default_data_root()

    @cached_property
    def corpus(self) -> TargetTexts:  # read when a stage first needs it, then kept
        return load_corpus(self.spec.target, seed=self.seed, data_root=self.data_root, base_dir=self.loaded.path.parent)

    @cached_property
    def test(self) -> TargetTexts | None:
        return load_target_test(
            self.spec.target, seed=self.seed, data_root=self.data_root, base_dir=self.loaded.path.parent
        )

    @property
    def seed(self) -> int:
        return self.loaded.recipe.train.seed


def output_dir(loaded: LoadedRecipe, options: AdaptOptions) -> Path:
    """A fixed folder (no timestamp), so running the recipe again finds and skips its finished stages."""
    recipe = loaded.recipe
    named = Path(recipe.output.dir) if recipe.output.dir else Path(recipe.output.root) / loaded.name
    out = options.output_dir or named
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(
            f"output folder {out} exists and is not an nlp-transfer adapt folder; choose another --output-dir or "
            "output.dir (it is never written into)"
        )
    return out


def run_rows(loaded: LoadedRecipe, rows: dict[str, tuple[str, ...]], options: AdaptOptions) -> list[dict[str, Any]]:
    """Run every row's chain (shared stages once) and return one table row per chain."""
    spec = loaded.recipe.adapt
    if spec is None:
        raise UserError(f"{loaded.path}: no adapt section; add adapt: {{target: ..., stages: [...]}}")
    out = output_dir(loaded, options)
    out.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(out)
    folder.write_json(MARKER, {"tool": "nlp-transfer adapt", "written_at": datetime.now(UTC).isoformat()})
    folder.write_text("recipe.resolved.yaml", loaded.to_yaml())
    adaptation = Adaptation(loaded, spec, out, options)
    done: dict[tuple[str, ...], Outcome] = {}
    table = []
    for row, stages in rows.items():
        outcomes = [_stage(adaptation, stages[: depth + 1], done) for depth in range(len(stages))]
        table.append(_table_row(row, outcomes))
    return table


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
    inputs = _inputs_hash(adaptation.loaded.recipe, chain, adaptation.spec)
    record = _read_record(folder)
    finished = record.get("inputs_hash") == inputs and Path(record.get("model_dir", "")).is_dir()
    if finished and not adaptation.options.overwrite:
        log.info("stage %s: complete with the same inputs, skipped", "+".join(chain))
        outcome = Outcome(
            name,
            Path(record["model_dir"]),
            record["start_model"],
            record["metrics"],
            record["seconds"],
            skipped=True,
        )
    else:
        # A stage cut short with the same inputs continues (its runs resume from their checkpoints); otherwise it
        # starts again. What each stage started with is kept outside its folder: a run folder must start empty.
        started = _read_json(adaptation.out_dir / STARTED)
        same_inputs = started.get("+".join(chain)) == inputs and not adaptation.options.overwrite
        if folder.exists() and not same_inputs:
            log.info("stage %s: inputs changed; training it again", "+".join(chain))
            shutil.rmtree(folder)
        elif folder.exists():
            log.info("stage %s: unfinished with the same inputs; resuming it", "+".join(chain))
        folder.mkdir(parents=True, exist_ok=True)
        RunFolder(adaptation.out_dir).write_json(STARTED, {**started, "+".join(chain): inputs})
        clock = time.perf_counter()
        outcome = RUNNERS[name](adaptation, config, folder, previous)
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


def _inputs_hash(recipe: Recipe, chain: tuple[str, ...], spec: AdaptSpec) -> str:
    """Everything a stage's result depends on: the recipe (but not where output goes) and its chain's stages."""
    raw = recipe.model_dump(mode="json", exclude={"output": True, "adapt": {"stages"}})
    raw["chain"] = [s.model_dump(mode="json") for s in spec.stages if s.name in chain]
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def _read_record(folder: Path) -> dict[str, Any]:
    return _read_json(folder / STAGE_RECORD)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


# ---- the stages -----------------------------------------------------------------------------------------------


def _pretrain(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    assert isinstance(config, PretrainStage)
    recipe = adaptation.loaded.recipe
    asset = resolve_model(recipe.model.name, recipe.model.revision, base_dir=adaptation.loaded.path.parent)
    tokenizer = load_tokenizer(asset, recipe.model)
    result = continue_pretraining(
        config,
        model_asset=asset,
        trust_remote_code=recipe.model.trust_remote_code,
        tokenizer=tokenizer,
        texts=adaptation.corpus.texts,
        seed=adaptation.seed,
        out_dir=folder,
    )
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    metrics = {**result.metrics, "corpus_texts": len(adaptation.corpus.texts), "notes": adaptation.corpus.notes}
    return Outcome("pretrain", folder, None, metrics, 0.0)


def _finetune(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    start = str(previous.model_dir.resolve()) if previous is not None else None
    _train_classifier(adaptation, supervised_recipe(adaptation.loaded, start), folder)
    metrics = _evaluate_domains(adaptation, folder)
    return Outcome("finetune", folder, start, metrics, 0.0)


def _self_train(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    assert isinstance(config, SelfTrainStage) and previous is not None
    from nlp_transfer.pipeline import ExtraRows

    texts = adaptation.corpus.texts
    teacher = previous.model_dir
    names = _label_names(teacher)
    rounds = []
    round_dir = teacher
    recipe = supervised_recipe(adaptation.loaded, previous.start_model, config.epochs, config.learning_rate)
    for round_number in range(1, config.rounds + 1):
        probabilities = np.load(teacher / CORPUS_PROBABILITIES, allow_pickle=False)
        keep = round(config.keep_fraction * round_number / config.rounds * len(texts))
        chosen = select_pseudo_labels(
            probabilities, keep, balanced=config.balanced, min_confidence=config.min_confidence
        )
        if not chosen:
            raise UserError(
                f"adapt.stages (self_train): round {round_number} kept no pseudo-labels; lower min_confidence "
                "or raise keep_fraction"
            )
        RunFolder(folder).write_text(
            f"pseudo_labels-round{round_number}.jsonl",
            "".join(
                json.dumps({"index": p.index, "text": texts[p.index], "label": names[p.label], "p": p.probability})
                + "\n"
                for p in chosen
            ),
        )
        round_dir = folder / f"round{round_number}"
        extra = ExtraRows(
            texts=[texts[p.index] for p in chosen],
            labels=[p.label for p in chosen],
            label_names=names,
            description=f"pseudo-labelled target texts (self-training round {round_number})",
        )
        _train_classifier(adaptation, recipe, round_dir, extra)
        evaluation = _evaluate_domains(adaptation, round_dir)
        shares = np.bincount([p.label for p in chosen], minlength=len(names)) / len(chosen)
        rounds.append(
            {
                "round": round_number,
                "pseudo_labels": len(chosen),
                "pseudo_label_shares": dict(zip(names, shares.round(4).tolist(), strict=True)),
                "pseudo_label_mean_probability": round(float(np.mean([p.probability for p in chosen])), 4),
                **evaluation,
            }
        )
        log.info("self-training round %d: %d pseudo-labels -> %s", round_number, len(chosen), evaluation)
        teacher = round_dir
    return Outcome("self_train", round_dir, previous.start_model, {**rounds[-1], "rounds": rounds}, 0.0)


RUNNERS: dict[str, Callable[[Adaptation, Any, Path, Outcome | None], Outcome]] = {
    "pretrain": _pretrain,
    "finetune": _finetune,
    "self_train": _self_train,
}


def supervised_recipe(
    loaded: LoadedRecipe, start_model: str | None, epochs: float | None = None, learning_rate: float | None = None
) -> LoadedRecipe:
    """The recipe as a plain (single-stage) run: its method on its source data, from `start_model` when given."""
    raw = loaded.recipe.model_dump(mode="json")
    raw["adapt"] = None
    raw["output"]["dir"] = None
    if start_model is not None:
        raw["model"].update(name=start_model, tokenizer=start_model, revision=None)
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    if learning_rate is not None:
        raw["train"]["learning_rate"] = learning_rate
        if "learning_rate" in raw["method"]:
            raw["method"]["learning_rate"] = learning_rate
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{loaded.path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=loaded.path, name=loaded.name)


def _train_classifier(adaptation: Adaptation, loaded: LoadedRecipe, run_dir: Path, extra: Any = None) -> None:
    """Train (or, for a run an interruption cut short, resume) one classifier of the chain."""
    from nlp_transfer.pipeline import RunOptions, run

    state = read_status(run_dir).get("state")
    if state == "complete" and not adaptation.options.overwrite:  # the stage was cut short after this run
        log.info("%s: complete with the same inputs, not trained again", run_dir)
        return
    resume = state in ("running", "interrupted", "failed") and not adaptation.options.overwrite
    options = RunOptions(
        output_dir=run_dir,
        overwrite=not resume,
        resume=resume,
        data_root=adaptation.options.data_root,
        extra_train=extra,
    )
    run(loaded, options)


def _label_names(run_dir: Path) -> list[str]:
    config = json.loads((run_dir / "stage_labels.json").read_text(encoding="utf-8"))
    return list(config)


def _evaluate_domains(adaptation: Adaptation, run_dir: Path) -> dict[str, Any]:
    """Source dev (from the run's own evaluation), target test (labels read here only), label-free signals on the
    target corpus. The corpus probabilities are kept for the next self-training round."""
    started = time.perf_counter()
    source = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["eval"]
    probabilities, names = class_probabilities(run_dir, adaptation.corpus.texts)
    np.save(run_dir / CORPUS_PROBABILITIES, probabilities, allow_pickle=False)
    RunFolder(run_dir).write_json("stage_labels.json", names)
    result: dict[str, Any] = {
        "source_accuracy": source["eval_accuracy"],
        "source_macro_f1": source["eval_macro_f1"],
        **label_free_signals(probabilities, names),
    }
    test = adaptation.test
    if test is not None and test.labels is not None:
        test_probabilities, _ = class_probabilities(run_dir, test.texts)
        declared = adaptation.loaded.recipe.task.labels is not None  # type: ignore[union-attr]
        gold = gold_ids(test.labels, names, declared, f"adapt.target.test ({', '.join(test.sources)})")
        result.update(target_metrics(test_probabilities, gold, names))
    result["eval_seconds"] = round(time.perf_counter() - started, 1)
    return result


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
    )
    return {
        "row": row,
        "stages": [o.stage for o in outcomes],
        **{key: last.get(key) for key in keys},
        "seconds": round(sum(o.seconds for o in outcomes), 1),
        "model": str(outcomes[-1].model_dir),
        "reused": [o.stage for o in outcomes if o.skipped],
    }
