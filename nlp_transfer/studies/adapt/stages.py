"""What each adapt stage does: pretrain (continued pre-training on the target corpus), finetune (the recipe's method
on the labelled source), self_train (rounds of pseudo-labelling the target and training again) and prior_correction
(correction.py). signals.py scores each classifier on both domains; chain.py decides which stages run and reuses
finished ones.

A self-training round is an ordinary run: its pseudo-labels are a data file in the source's own columns and label
form (pseudo_labels-round<r>.jsonl), listed in the round's data.train. The round's recorded recipe and data hashes
therefore describe exactly what it trained on, and `nlp-transfer run ROUND --reproduce` trains it again.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import resolve_model
from nlp_transfer.data.loading import as_files
from nlp_transfer.methods.pretrained import load_tokenizer
from nlp_transfer.recipe import (
    AdaptSpec,
    DataFile,
    LoadedRecipe,
    PretrainStage,
    Recipe,
    SelfTrainStage,
    describe_validation_error,
)
from nlp_transfer.runfolder.folder import CHECKPOINTS_DIR, RunFolder, read_status
from nlp_transfer.studies.adapt.corpus import TargetTexts
from nlp_transfer.studies.adapt.correction import corrected_copy
from nlp_transfer.studies.adapt.label_shift import check_estimable
from nlp_transfer.studies.adapt.pretrain import check_pretraining, continue_pretraining
from nlp_transfer.studies.adapt.selftrain import PseudoLabel, select_pseudo_labels
from nlp_transfer.studies.adapt.signals import (
    CORPUS_LOGITS,
    estimate_for,
    evaluate_domains,
    softmax,
    stage_label_names,
    trusted,
)
from nlp_transfer.tasks.classification import gold_ids
from nlp_transfer.train.pipeline import RunOptions, prepare_run, run

if TYPE_CHECKING:
    from nlp_transfer.studies.adapt.chain import Adaptation

log = logging.getLogger(__name__)


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
class Source:
    """What the labelled source data says, read once before any stage trains."""

    label_names: list[str]
    label_ids_are_values: bool  # the label column holds class ids (ints), not class names
    declared: bool  # task.labels names the classes
    eval_texts: list[str]  # the labelled source eval split: calibration and label-shift estimation read it
    eval_pairs: list[str] | None  # its second texts, for a text-pair task
    eval_labels: np.ndarray  # (M,) class ids
    file_hashes: dict[str, str] = field(default_factory=dict)

    def value(self, class_id: int) -> Any:
        """Class id -> the label as the source file writes it (an id, or a name), for the pseudo-label file."""
        if not self.label_ids_are_values:
            return self.label_names[class_id]
        return class_id if self.declared else int(self.label_names[class_id])


def check_source(loaded: LoadedRecipe, data_root: Path | None, test: TargetTexts | None) -> Source:
    """The supervised run prepared without training (data, labels, tokenization, model, method settings), and the
    target test labels checked against the source's."""
    setup = prepare_run(supervised_recipe(loaded, None), RunOptions(data_root=data_root))
    task: Any = loaded.recipe.task
    train, evaluation = setup.data.splits["train"], setup.data.splits["eval"]
    label_type = str(getattr(train.features.get(task.label), "dtype", ""))
    names, declared = setup.prepared.label_names, task.labels is not None
    source = Source(
        label_names=names,
        label_ids_are_values=label_type.startswith("int"),
        declared=declared,
        eval_texts=[str(text) for text in evaluation[task.text]],
        eval_pairs=[str(text) for text in evaluation[task.text_pair]] if task.text_pair else None,
        eval_labels=gold_ids(evaluation[task.label], names, declared, "data.eval", fix="fix the eval file"),
        file_hashes=setup.data.file_hashes,
    )
    if test is not None and test.labels is not None:
        gold_ids(test.labels, source.label_names, source.declared, f"adapt.target.test ({', '.join(test.sources)})")
    return source


def check_estimation(spec: AdaptSpec, stages: set[str], source: Source, corpus: TargetTexts) -> bool:
    """When a stage uses the estimated target prior: every class in the source eval split, a corpus big enough.
    True when one does."""
    self_train = spec.stage("self_train")
    estimated = isinstance(self_train, SelfTrainStage) and self_train.proportions == "estimated"
    if "prior_correction" in stages or ("self_train" in stages and estimated):
        check_estimable(spec.label_shift, source.label_names, source.eval_labels, len(corpus.texts))
        return True
    return False


def check_stage_inputs(loaded: LoadedRecipe, spec: AdaptSpec, stages: set[str], corpus: TargetTexts) -> None:
    config = spec.stage("pretrain")
    if "pretrain" in stages and isinstance(config, PretrainStage):
        recipe = loaded.recipe
        asset = resolve_model(recipe.model.name, recipe.model.revision, base_dir=loaded.path.parent)
        tokenizer = load_tokenizer(asset, recipe.model)
        check_pretraining(config, model_asset=asset, tokenizer=tokenizer, texts=corpus.texts)


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
        resume_hint=adaptation.resume_hint,
        precision=recipe.train.precision,
    )
    shutil.rmtree(folder / CHECKPOINTS_DIR, ignore_errors=True)
    metrics = {**result.metrics, "corpus_texts": len(adaptation.corpus.texts), "notes": adaptation.corpus.notes}
    return Outcome("pretrain", folder, None, metrics, 0.0)


def _finetune(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    start = str(previous.model_dir.resolve()) if previous is not None else None
    _train_classifier(adaptation, supervised_recipe(adaptation.loaded, start), folder)
    metrics = evaluate_domains(adaptation, folder)
    return Outcome("finetune", folder, start, metrics, 0.0)


def _self_train(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    assert isinstance(config, SelfTrainStage) and previous is not None and adaptation.source is not None
    texts = adaptation.corpus.texts
    teacher = previous.model_dir
    names = stage_label_names(teacher)
    rounds = []
    round_dir = teacher
    base = supervised_recipe(adaptation.loaded, previous.start_model, config.epochs, config.learning_rate)
    for round_number in range(1, config.rounds + 1):
        probabilities = softmax(np.load(teacher / CORPUS_LOGITS, allow_pickle=False))
        keep = round(config.keep_fraction * round_number / config.rounds * len(texts))
        shares, proportions = _pseudo_label_shares(adaptation, config, teacher, len(names))
        chosen = select_pseudo_labels(probabilities, keep, shares=shares, min_confidence=config.min_confidence)
        if not chosen:
            raise UserError(
                f"adapt.stages (self_train): round {round_number} kept no pseudo-labels; lower min_confidence "
                "or raise keep_fraction"
            )
        pseudo = _write_pseudo_labels(folder / f"pseudo_labels-round{round_number}.jsonl", adaptation, chosen, texts)
        round_dir = folder / f"round{round_number}"
        _train_classifier(adaptation, with_extra_train(base, pseudo, len(chosen)), round_dir)
        evaluation = evaluate_domains(adaptation, round_dir)
        taken = np.bincount([p.label for p in chosen], minlength=len(names)) / len(chosen)
        rounds.append(
            {
                "round": round_number,
                "pseudo_labels": len(chosen),
                "proportions": proportions,
                "pseudo_label_target_shares": _named(names, shares) if shares is not None else None,
                "pseudo_label_shares": _named(names, taken),
                "pseudo_label_mean_probability": round(float(np.mean([p.probability for p in chosen])), 4),
                **evaluation,
            }
        )
        log.info("self-training round %d: %d pseudo-labels -> %s", round_number, len(chosen), evaluation)
        teacher = round_dir
    return Outcome("self_train", round_dir, previous.start_model, {**rounds[-1], "rounds": rounds}, 0.0)


def _prior_correction(adaptation: Adaptation, config: Any, folder: Path, previous: Outcome | None) -> Outcome:
    """The previous classifier, copied with its correction for the estimated target prior (correction.py)."""
    assert previous is not None
    metrics = corrected_copy(adaptation, previous.model_dir, folder)
    return Outcome("prior_correction", folder, previous.start_model, metrics, 0.0)


def _pseudo_label_shares(
    adaptation: Adaptation, config: SelfTrainStage, teacher: Path, k: int
) -> tuple[np.ndarray | None, str]:
    """The class proportions of a round's pseudo-labels (None: the teacher's argmax decides), and what they are."""
    if config.proportions == "uniform":
        return np.full(k, 1.0 / k), "uniform"
    if config.proportions == "predicted":
        return None, "predicted"
    estimate = estimate_for(adaptation, teacher, required=True)
    assert estimate is not None
    if not trusted(adaptation, estimate):
        log.warning("self_train: the estimated prior is not used (label shift does not hold): uniform proportions")
        return np.full(k, 1.0 / k), f"uniform: the estimate is not used, label shift does not hold ({estimate.doubt})"
    return estimate.prior, "estimated"


def _named(names: list[str], values: np.ndarray) -> dict[str, float]:
    return dict(zip(names, np.round(values, 4).tolist(), strict=True))


@dataclass(frozen=True)
class Stage:
    """A stage's runner and the tasks (recipe task.name) it serves; None: every task."""

    run: Callable[[Adaptation, Any, Path, Outcome | None], Outcome]
    serves: frozenset[str] | None


CLASSES_ONLY = frozenset({"classification"})  # pseudo-labels and label priors are over single classes
RUNNERS: dict[str, Stage] = {
    "pretrain": Stage(_pretrain, None),  # masked-LM on the target corpus: whatever the task
    "finetune": Stage(_finetune, None),
    "self_train": Stage(_self_train, CLASSES_ONLY),
    "prior_correction": Stage(_prior_correction, CLASSES_ONLY),
}


def check_stages_serve(stages: set[str], task: str) -> None:
    """Each stage the chains run serves the recipe's task: one line before anything is read or trained."""
    for name in sorted(stages):
        served = RUNNERS[name].serves
        if served is not None and task not in served:
            raise UserError(
                f"adapt.stages: {name} serves {', '.join(sorted(served))} tasks, not {task} (it works with class "
                f"labels); remove {name} from adapt.stages"
            )


def _write_pseudo_labels(path: Path, adaptation: Adaptation, chosen: list[PseudoLabel], texts: list[str]) -> Path:
    """The chosen target texts as training rows in the source's own text and label columns and label form (ids or
    names), plus where each came from (corpus index) and the teacher's probability."""
    assert adaptation.source is not None
    task: Any = adaptation.loaded.recipe.task
    rows = [
        {task.text: texts[p.index], task.label: adaptation.source.value(p.label), "index": p.index, "p": p.probability}
        for p in chosen
    ]
    RunFolder(path.parent).write_text(path.name, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path.resolve()


def with_extra_train(loaded: LoadedRecipe, path: Path, rows: int) -> LoadedRecipe:
    """The recipe with one more training file (pseudo-labels), taken whole: its max_samples is its own row count,
    which also keeps it out of data.max_train_samples, so the source rows are the very ones the source run had."""
    raw = loaded.recipe.model_dump(mode="json")
    extra = DataFile(path=str(path), format="jsonl", max_samples=rows).model_dump(mode="json", exclude_none=True)
    raw["data"]["train"] = [
        *[f.model_dump(mode="json", exclude_none=True) for f in as_files(loaded.recipe.data.train)],
        extra,
    ]
    return _validated(loaded, raw)


def supervised_recipe(
    loaded: LoadedRecipe, start_model: str | None, epochs: float | None = None, learning_rate: float | None = None
) -> LoadedRecipe:
    """The recipe as a plain (single-run) recipe: its method on its source data, from `start_model` when given."""
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
    return _validated(loaded, raw)


def _validated(loaded: LoadedRecipe, raw: dict[str, Any]) -> LoadedRecipe:
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{loaded.path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=loaded.path, name=loaded.name)


def _train_classifier(adaptation: Adaptation, loaded: LoadedRecipe, run_dir: Path) -> None:
    """Train (or, for a run an interruption cut short, resume) one classifier of the chain."""
    state = read_status(run_dir).get("state")
    if state == "complete" and not adaptation.options.overwrite:  # the stage was cut short after this run
        log.info("%s: complete with the same inputs, not trained again", run_dir)
        return
    resume = state in ("running", "interrupted", "failed") and not adaptation.options.overwrite
    options = RunOptions(
        output_dir=run_dir, overwrite=not resume, resume=resume, data_root=adaptation.options.data_root
    )
    run(loaded, options)
