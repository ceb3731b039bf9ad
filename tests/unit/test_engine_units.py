"""Unit tests of the engine where bugs hide, without training: multi-label thresholds against a brute-force
reference, the resume decisions (which checkpoint, which phase), checkpoint rotation, and the decisions every
process takes together, with a fake accelerator standing for the other rank."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import CHECKPOINTS_DIR
from nlp_transfer.tasks import thresholds
from nlp_transfer.train import checkpoints
from nlp_transfer.train.callbacks import StopOnRequest
from nlp_transfer.train.interruption import STOP
from nlp_transfer.train.phase_records import (
    PHASE_RECORD,
    PHASE_WEIGHTS,
    decide_resume,
    load_finished,
    record_finished,
)
from nlp_transfer.train.trainer import TaskTrainer

# ---- multi-label thresholds ------------------------------------------------------------------------------------


def _scores(seed: int = 0, rows: int = 60, labels: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = (rng.random((rows, labels)) < [0.5, 0.2, 0.05, 0.0]).astype(int)  # the last label never occurs
    probabilities = np.clip(0.35 * gold + rng.random((rows, labels)) * 0.65, 0, 1)
    return probabilities, gold


def test_f1_at_every_threshold_is_sklearns() -> None:
    probabilities, gold = _scores()
    found = thresholds.f1_per_threshold(probabilities, gold)
    for g in (0, 17, 48, 96):
        cut = thresholds.GRID[g]
        for label in range(gold.shape[1]):
            expected = f1_score(gold[:, label], probabilities[:, label] >= cut, zero_division=0.0)
            assert found[g, label] == pytest.approx(expected), (cut, label)


def test_tuned_thresholds_reach_the_best_f1_and_a_label_never_seen_keeps_the_fixed_one() -> None:
    probabilities, gold = _scores()
    per_label = thresholds.tune(probabilities, gold, "per_label", fixed=0.5)
    for label in range(3):
        best = max(f1_score(gold[:, label], probabilities[:, label] >= t) for t in thresholds.GRID)
        assert f1_score(gold[:, label], probabilities[:, label] >= per_label[label]) == pytest.approx(best)
    assert per_label[3] == 0.5  # no positive eval text: nothing to tune on

    shared = thresholds.tune(probabilities, gold, "global", fixed=0.5)
    assert len(set(shared.tolist())) == 1
    macro = [f1_score(gold, probabilities >= t, average="macro", zero_division=0.0) for t in thresholds.GRID]
    assert f1_score(gold, probabilities >= shared[0], average="macro", zero_division=0.0) == pytest.approx(max(macro))
    assert thresholds.tune(probabilities, gold, "fixed", fixed=0.3).tolist() == [0.3] * 4


def test_a_plateau_of_equal_scores_gives_its_middle() -> None:
    scores = np.zeros(len(thresholds.GRID))
    scores[10:21] = 0.8  # thresholds 0.12 .. 0.22 all reach the best
    assert thresholds._middle_of_best(scores) == thresholds.GRID[15]


def test_settled_thresholds_stop_following_the_evaluations_and_round_trip_through_the_record() -> None:
    probabilities, gold = _scores()
    names = ["a", "b", "c", "d"]
    decisions = thresholds.Decisions(names, "per_label", fixed=0.5)
    assert decisions.settle()["thresholds"] == dict.fromkeys(names, 0.5)  # settled before any evaluation: fixed

    decisions = thresholds.Decisions(names, "per_label", fixed=0.5)
    tuned = decisions.thresholds(probabilities, gold)
    saved = decisions.settle()
    other, other_gold = _scores(seed=1)
    assert decisions.thresholds(other, other_gold).tolist() == tuned.tolist()  # the test split does not re-tune
    assert saved["tuned_on"] == "eval"
    assert thresholds.from_record(json.loads(json.dumps(saved)), names).tolist() == pytest.approx(tuned.tolist())
    assert thresholds.from_record(saved, [*names, "e"]) is None  # a label without a threshold: not this model's


# ---- resume decisions ------------------------------------------------------------------------------------------


def _resume_point(phase_dir: Path) -> Path | None:
    """Where a resumed run restarts this phase (phase_records decides it for every phase of a run folder, whose
    phases live in <run>/checkpoints/<phase>)."""
    checkpoint = decide_resume(phase_dir.parent.parent, [phase_dir.name])[phase_dir.name].checkpoint
    return None if checkpoint is None else Path(checkpoint)


def _finished_phase(phase_dir: Path, model: torch.nn.Module) -> dict | None:
    """The record of a finished phase, its weights loaded into `model`; None when the phase must train."""
    finished = decide_resume(phase_dir.parent.parent, [phase_dir.name])[phase_dir.name].finished
    if finished is not None:
        load_finished(model, phase_dir)
    return finished


def _checkpoint(phase_dir: Path, step: int, sealed: bool) -> Path:
    folder = phase_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights of step %d" % step)
    if sealed:
        checkpoints.seal(folder)
    return folder


def test_resume_takes_the_newest_sealed_checkpoint_and_says_what_it_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    phase_dir = tmp_path / CHECKPOINTS_DIR / "train"
    good = _checkpoint(phase_dir, 4, sealed=True)
    damaged = _checkpoint(phase_dir, 8, sealed=True)
    (damaged / "model.safetensors").write_bytes(b"changed after the seal")
    _checkpoint(phase_dir, 12, sealed=False)  # killed while saving
    with caplog.at_level("WARNING"):
        assert _resume_point(phase_dir) == good
    assert "checkpoint-12: not sealed" in caplog.text and "checkpoint-8: model.safetensors is damaged" in caplog.text


def test_resume_starts_a_phase_over_without_checkpoints_and_refuses_when_none_is_usable(tmp_path: Path) -> None:
    assert _resume_point(tmp_path / CHECKPOINTS_DIR / "never-saved") is None
    _checkpoint(tmp_path / CHECKPOINTS_DIR / "train", 4, sealed=False)
    with pytest.raises(UserError, match="no usable checkpoint"):
        _resume_point(tmp_path / CHECKPOINTS_DIR / "train")


def test_a_finished_phase_is_not_trained_again_and_comes_back_with_its_weights(tmp_path: Path) -> None:
    phase_dir = tmp_path / CHECKPOINTS_DIR / "probe"
    assert _finished_phase(phase_dir, torch.nn.Linear(3, 2)) is None  # not finished: train it
    trained = torch.nn.Linear(3, 2)
    record_finished(phase_dir, trained, {"eval": {"eval_loss": 0.5}}, [{"step": 1, "loss": 0.7}])
    assert {p.name for p in phase_dir.iterdir()} >= {PHASE_RECORD, PHASE_WEIGHTS}
    fresh = torch.nn.Linear(3, 2)
    found = _finished_phase(phase_dir, fresh)
    assert found == {"metrics": {"eval": {"eval_loss": 0.5}}, "history": [{"step": 1, "loss": 0.7}]}
    torch.testing.assert_close(fresh.weight, trained.weight)  # the next phase starts from these weights


def test_rotation_keeps_the_newest_sealed_ones_and_the_best(tmp_path: Path) -> None:
    phase_dir = tmp_path / "train"
    for step in (2, 4, 6, 8):
        _checkpoint(phase_dir, step, sealed=True)
    _checkpoint(phase_dir, 10, sealed=False)  # being written: never deleted
    checkpoints.rotate(phase_dir, protect=phase_dir / "checkpoint-2")
    assert sorted(p.name for p in phase_dir.iterdir()) == [
        "checkpoint-10",
        "checkpoint-2",
        "checkpoint-6",
        "checkpoint-8",
    ]


# ---- decisions every process takes together --------------------------------------------------------------------


class FakeAccelerator:
    """Two processes, this one and another whose answers the test sets: reduce adds the other rank's value;
    set_trigger / check_trigger is accelerate's flag that any rank may raise and every rank reads."""

    def __init__(self, processes: int = 2, other_nonfinite: bool = False, other_signalled: bool = False) -> None:
        self.num_processes = processes
        self.other_nonfinite, self.other_signalled = other_nonfinite, other_signalled
        self.reductions = 0
        self.triggered = False

    def reduce(self, tensor: torch.Tensor, reduction: str) -> torch.Tensor:
        assert reduction == "sum"
        self.reductions += 1
        return tensor + float(self.other_nonfinite)

    def set_trigger(self) -> None:
        self.triggered = True

    def check_trigger(self) -> bool:
        return self.triggered or self.other_signalled


def _nonfinite_anywhere(accelerator: FakeAccelerator, loss: float) -> bool:
    trainer: Any = SimpleNamespace(accelerator=accelerator)
    return bool(TaskTrainer._nonfinite_anywhere(trainer, torch.tensor(loss)))


def test_a_nonfinite_loss_on_any_rank_is_seen_by_every_rank() -> None:
    assert _nonfinite_anywhere(FakeAccelerator(), 0.7) is False
    assert _nonfinite_anywhere(FakeAccelerator(other_nonfinite=True), 0.7) is True  # only the other rank's is NaN
    assert _nonfinite_anywhere(FakeAccelerator(), float("inf")) is True
    alone = FakeAccelerator(processes=1, other_nonfinite=True)
    assert _nonfinite_anywhere(alone, 0.7) is False and alone.reductions == 0  # no collective for one process


@pytest.mark.parametrize("here, there", [(True, False), (False, True), (False, False)])
def test_a_stop_request_on_any_rank_stops_every_rank_at_the_same_step_with_a_checkpoint(
    here: bool, there: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(STOP, "requested", here)
    accelerator = FakeAccelerator(other_signalled=there)
    callback = StopOnRequest(accelerator)
    control = SimpleNamespace(should_save=False, should_training_stop=False, should_evaluate=True)
    callback.on_step_end(None, None, control)
    stops = here or there
    assert (callback.stopped, control.should_save, control.should_training_stop) == (stops, stops, stops)
    assert accelerator.triggered is here  # the signalled rank raises the shared flag
    callback.on_epoch_end(None, None, control)
    assert control.should_evaluate is not stops  # a cut epoch is not evaluated (it could become the "best")
