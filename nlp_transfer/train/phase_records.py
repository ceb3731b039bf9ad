"""The record a finished phase leaves for a resumed run, and what a resumed run does with each of its phases.

A method in several phases (probe_then_finetune) records each finished phase (checkpoints/<phase>/phase_finished.*)
so a resumed run does not train it again; the phase that was cut short continues from its last good checkpoint.

Under `accelerate launch` the processes need not share a filesystem (configs/accelerate/ddp_multinode.yaml): rank 0
alone reads the run folder and decides for every phase (finished: skip it; cut short: continue from a checkpoint;
never started: start it over), and the decision reaches the others through core.distributed.decide. A finished
phase's weights go from rank 0 to the others the same way. The Trainer itself then loads the chosen checkpoint on
every process (the optimizer and each rank's RNG state), so resuming across machines needs that checkpoint on each
of them: a shared filesystem, or train.trainer.save_on_each_node.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
from torch import nn

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import CHECKPOINTS_DIR, RunFolder
from nlp_transfer.train import checkpoints

log = logging.getLogger(__name__)

PHASE_RECORD = "phase_finished.json"  # in checkpoints/<phase>: its metrics and log, written after its weights
PHASE_WEIGHTS = "phase_finished.safetensors"  # the whole model as the phase left it (the next phase starts there)


@dataclass(frozen=True)
class PhaseResume:
    """What a resumed run does with one phase, as rank 0 decided it."""

    finished: dict[str, Any] | None  # the record ({"metrics", "history"}) of a phase that finished: not trained again
    checkpoint: str | None  # the newest good checkpoint of a phase cut short; None: the phase starts over


def record_finished(phase_dir: Path, model: nn.Module, metrics: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """The main process keeps a finished phase's weights, then its record (which says the weights are whole)."""
    phase_dir.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_model(model, str(phase_dir / PHASE_WEIGHTS))
    RunFolder(phase_dir).write_json(PHASE_RECORD, {"metrics": metrics, "history": history})


def decide_resume(run_dir: Path, phases: list[str]) -> dict[str, PhaseResume]:
    """For every phase, what the resumed run does: read by rank 0 and the same on every process."""
    return distributed.decide(lambda: {name: _read(run_dir / CHECKPOINTS_DIR / name) for name in phases})


def load_finished(model: nn.Module, phase_dir: Path) -> None:
    """A finished phase's weights into `model` on every process: rank 0 reads the file and sends them."""
    if distributed.is_main():
        safetensors.torch.load_model(model, str(phase_dir / PHASE_WEIGHTS))
    if distributed.launched():
        state = distributed.agree(model.state_dict() if distributed.is_main() else None)
        if not distributed.is_main():
            model.load_state_dict(state)


def stopped_message(run_dir: Path, phase: str, step: int, recipe: Path) -> str:
    """How to resume a run stopped on request (every process raises it; rank 0 read which checkpoint was saved)."""
    saved = distributed.decide(lambda: checkpoints.last_usable(run_dir / CHECKPOINTS_DIR / phase).checkpoint)
    return (
        f"stopped at step {step} of phase {phase}; checkpoint saved: {saved}. "
        f"Resume with: nlp-transfer run {recipe} --resume --output-dir {run_dir}"
    )


def _read(phase_dir: Path) -> PhaseResume:
    if (phase_dir / PHASE_RECORD).is_file():
        return PhaseResume(
            finished=dict(json.loads((phase_dir / PHASE_RECORD).read_text(encoding="utf-8"))), checkpoint=None
        )
    found = checkpoints.last_usable(phase_dir)
    for skipped in found.skipped:
        log.warning("resume: %s/%s; falling back to an older checkpoint", phase_dir.name, skipped)
    if found.checkpoint is None and found.skipped:
        raise UserError(
            f"--resume: no usable checkpoint in {phase_dir} ({'; '.join(found.skipped)}); "
            "start the run again with --overwrite"
        )
    log.info("resume: %s", f"from {found.checkpoint}" if found.checkpoint else f"{phase_dir.name} starts over")
    return PhaseResume(finished=None, checkpoint=str(found.checkpoint) if found.checkpoint else None)
