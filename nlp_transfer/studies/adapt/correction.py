"""Stage prior_correction: the previous classifier, corrected for the target's class prior estimated without labels.

The stage folder is a complete run folder: a copy of the previous classifier's (weights hard-linked where the file
system allows, so a copy costs no space) with label_prior.json, which predict, evaluate and export apply
(use/label_prior.py). Its metrics.json and model card describe the corrected model: the source eval metrics are
those after the correction, the training run's own are kept beside them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.report.card import model_card
from nlp_transfer.runfolder.folder import CARD_FILE, CHECKPOINTS_DIR, LABEL_PRIOR_FILE, METRICS_FILE, RunFolder
from nlp_transfer.studies.adapt.signals import (
    CORPUS_LOGITS,
    SOURCE_LOGITS,
    TEST_LOGITS,
    DomainLogits,
    estimate_for,
    evaluate_domains,
    softmax,
    trusted,
)
from nlp_transfer.tasks.metrics import classification_metrics

if TYPE_CHECKING:
    from nlp_transfer.studies.adapt.chain import Adaptation
    from nlp_transfer.studies.adapt.label_shift import PriorEstimate

# Left behind: checkpoints, the previous classifier's saved logits (recomputed for the corrected model) and its
# stage record (chain.STAGE_RECORD; the new stage writes its own).
NOT_COPIED = frozenset({CHECKPOINTS_DIR, CORPUS_LOGITS, SOURCE_LOGITS, TEST_LOGITS, "stage.json"})


def corrected_copy(adaptation: Adaptation, classifier: Path, folder: Path) -> dict[str, Any]:
    """Estimate the target prior from `classifier`'s outputs, write the corrected copy to `folder`, score it. The
    correction is affine in the logits, so the corrected model's logits are computed from the classifier's saved
    ones (the same numbers predict gives, to float rounding) instead of running the model again."""
    estimate = estimate_for(adaptation, classifier, required=True)
    assert estimate is not None and adaptation.source is not None
    _copy_run(classifier, folder)
    if not trusted(adaptation, estimate):
        return _left_uncorrected(adaptation, classifier, folder, estimate)
    scale, bias = estimate.logit_adjustment()
    record = {
        "labels": estimate.names,
        "logit_scale": scale,
        "logit_bias": bias,
        "formula": "probabilities = softmax(logits * logit_scale + logit_bias)",
        "corrects": str(classifier),
        "target_corpus": adaptation.corpus.sources,
        "target_corpus_sha256": adaptation.corpus.file_hashes,
        **estimate.record(),
    }
    run = RunFolder(folder)
    run.write_json(LABEL_PRIOR_FILE, record)
    logits = DomainLogits.load(classifier).adjusted(scale, bias)
    _record_corrected_metrics(folder, logits.source, adaptation.source.eval_labels, estimate.names)
    run.write_text(CARD_FILE, model_card(folder))
    return evaluate_domains(adaptation, folder, logits, applied=estimate)


def _left_uncorrected(
    adaptation: Adaptation, classifier: Path, folder: Path, estimate: PriorEstimate
) -> dict[str, Any]:
    """The label-shift test rejected what the estimate assumes (adapt.label_shift.shift_test: require): the copy
    predicts as the classifier does, no label_prior.json; its metrics.json and the table say why."""
    why = f"label shift does not hold here: {estimate.doubt}"
    metrics = read_json_or_empty(folder / METRICS_FILE)
    metrics["prior_correction"] = {"applied": False, "why": why, **estimate.record()}
    RunFolder(folder).write_json(METRICS_FILE, metrics)
    result = evaluate_domains(adaptation, folder, DomainLogits.load(classifier), applied=estimate)
    result["warnings"].insert(
        0, f"not corrected: {why} (adapt.label_shift.shift_test: report applies the estimate anyway)"
    )
    return result


def _copy_run(classifier: Path, folder: Path) -> None:
    """The classifier's run folder into `folder` (emptied first: a copy cut short is simply made again)."""
    for old in folder.iterdir():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    for path in sorted(classifier.rglob("*")):
        relative = path.relative_to(classifier)
        if relative.parts[0] in NOT_COPIED or not path.is_file():
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":  # weights are never rewritten in place: a hard link is a safe copy
            try:
                os.link(path, target)
                continue
            except OSError:
                pass
        shutil.copy2(path, target)


def _record_corrected_metrics(folder: Path, logits: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    """metrics.json's eval (and test) describe the model as it now predicts; the training run's stay beside."""
    metrics = read_json_or_empty(folder / METRICS_FILE)
    for split in ("eval", "test"):
        if split in metrics:
            metrics[f"{split}_before_prior_correction"] = metrics.pop(split)
    log_probabilities = np.log(softmax(logits))
    found = classification_metrics(labels, logits.argmax(axis=1), names)
    loss = float(-log_probabilities[np.arange(len(labels)), labels].mean())
    metrics["eval"] = {f"eval_{key}": value for key, value in found.items()} | {"eval_loss": loss}
    RunFolder(folder).write_json(METRICS_FILE, metrics)
