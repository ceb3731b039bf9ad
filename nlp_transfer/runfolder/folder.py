"""The run folder: where a run writes, and the status file that says whether it is complete.

A run is complete only when `run_status.json` says so, and that file is written last. A failed or interrupted
run says "failed" / "interrupted" there. Replacing a complete run (--overwrite) moves the old one aside and
deletes it only after the new run completes; if the new run fails the old one is put back.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core import distributed
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import read_json_or_empty, sha256_file, write_atomically
from nlp_transfer.methods.lora import ADAPTER_CONFIG_FILE, BASE_CONFIG_FILE, MERGED_DIR
from nlp_transfer.methods.probe import PROBE_FILE
from nlp_transfer.tasks.thresholds import THRESHOLDS_FILE  # noqa: F401  # a task's own file, named in its module

# ---- every file of a run folder, named once --------------------------------------------------------------------
STATUS_FILE = "run_status.json"  # running / complete / failed / interrupted; written last on success
RECIPE_FILE = "recipe.resolved.yaml"  # the exact recipe, defaults filled in
ENVIRONMENT_FILE = "environment.json"  # libraries, seed, data hashes, model source: what reproducing needs
METRICS_FILE = "metrics.json"  # train / eval / test metrics
TASK_FILE = "task.json"  # what the task resolved from the data (e.g. QA's unanswerable), for predict
CARD_FILE = "README.md"  # the model card (also where the Hub keeps it)
RUN_LOG = "run.log"  # our log lines and the libraries' warnings
TRAINER_LOG = "trainer_log.jsonl"  # every Trainer log line
TRAINER_STATE = "trainer_state.json"  # the Trainer's log history, every phase
PUSHES_FILE = "pushes.json"  # each push: repo, branch, commit (a record of this machine, never shared)
CHECKPOINTS_DIR = "checkpoints"  # checkpoints/<phase>/checkpoint-<step>
EXPORT_FILE = "export.json"  # in an export folder: where it came from, the merge and ONNX checks
SAMPLE_INPUTS = "sample inputs"  # export.json's int8 agreement.inputs when it was measured on the sample inputs
TOKENIZER_RECORD = "tokenizer_files.json"  # names and sha256 of the tokenizer's files, checked by everything that loads
ADAPT_MARKER = "adapt_run.json"  # an adapt folder of stages (several models, not itself one)
REPORT_FILE = "report.html"  # one self-contained page: recipe, metrics, diagnostics, figures, worst errors
CURVES_FILE = "curves.png"  # training loss, eval loss and metric over the run
ERRORS_FILE = "errors.jsonl"  # classification: the eval examples the model gets wrong most confidently
TRACKER_DIRS = ("tensorboard", "mlruns", "wandb")  # what train.report_to's trackers write under the run folder
LABEL_PRIOR_FILE = "label_prior.json"  # a classifier's correction for its target domain's label prior (adapt)

# Files of a run folder that describe the training process on this machine, not the model: never shared.
RUN_INTERNALS = frozenset(
    {STATUS_FILE, RUN_LOG, TRAINER_STATE, TRAINER_LOG, PUSHES_FILE, CHECKPOINTS_DIR, MERGED_DIR, *TRACKER_DIRS}
)

# How a folder stores its model, told by one file; checked in order (an adapter folder has no config.json, a probe
# folder is a model folder plus probe.json). use.trained says how to load each.
LAYOUT_MARKERS = (("adapter", ADAPTER_CONFIG_FILE), ("probe", PROBE_FILE), ("plain", "config.json"))


@dataclass
class RunFolder:
    path: Path
    # Under accelerate launch only the main process writes (the others would race on the same files): a folder
    # opened anywhere without saying otherwise writes from the main process only.
    writer: bool = field(default_factory=distributed.is_main)

    @property
    def state(self) -> str | None:
        return read_status(self.path).get("state")

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, default=str) + "\n")

    def write_text(self, name: str, text: str) -> Path:
        """Write through a temporary file and rename: a crash never leaves a half-written file."""
        target = self.path / name
        if self.writer:
            write_atomically(target, text)
        return target

    def mark(self, state: str, **info: Any) -> None:
        if not self.writer:
            return
        status = {**read_status(self.path), "state": state, f"{state}_at": _now(), **info}
        self.write_json(STATUS_FILE, status)


def read_status(path: Path) -> dict[str, Any]:
    return read_json_or_empty(path / STATUS_FILE)


def layout_of(folder: Path) -> str | None:
    """adapter, probe or plain: how the folder stores its model (LAYOUT_MARKERS); None when it holds none."""
    return next((name for name, marker in LAYOUT_MARKERS if (folder / marker).is_file()), None)


def label_names(folder: Path) -> list[str]:
    """Class names in id order, from the model's config (a LoRA folder keeps it in base_model_config.json)."""
    for name in ("config.json", BASE_CONFIG_FILE):
        config = read_json_or_empty(folder / name)
        if config:
            id2label = config.get("id2label") or {}
            return [str(id2label[key]) for key in sorted(id2label, key=int)]
    return []


# Files a tokenizer's save_pretrained may write besides its vocabulary files (tokenizer.vocab_files_names).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def tokenizer_record(folder: Path, tokenizer: Any) -> dict[str, Any]:
    """What the tokenizer saved in `folder` consists of: {"files": {name: sha256}} (TOKENIZER_RECORD's content).

    transformers builds a tokenizer from whatever is left of these files, and from none of them an empty one that
    turns every word into [UNK]; the record is how a reader knows what must be there."""
    names = {*TOKENIZER_FILES, *getattr(tokenizer, "vocab_files_names", {}).values()}
    return {"files": {name: sha256_file(folder / name) for name in sorted(names) if (folder / name).is_file()}}


def tokenizer_problem(folder: Path) -> str | None:
    """None when the folder's tokenizer is the one recorded; else which file is missing, changed or unreadable.
    A folder written before the record existed must at least hold tokenizer.json (only fast tokenizers are used)."""
    record = folder / TOKENIZER_RECORD
    if not record.is_file():
        return None if (folder / "tokenizer.json").is_file() else f"{folder} has no tokenizer (no tokenizer.json)"
    files = read_json_or_empty(record).get("files")
    if not isinstance(files, dict) or not files:
        return f"{record} is damaged (not the JSON record of the tokenizer's files)"
    for name, digest in sorted(files.items()):
        path = folder / str(name)
        if not path.is_file():
            return f"{path}, a file of the tokenizer the model was trained with, is missing"
        if sha256_file(path) != digest:
            return f"{path} differs from the tokenizer the model was trained with (its sha256 is not the recorded one)"
    return None


def require_complete(path: Path) -> None:
    """For commands that read a finished run (predict, push)."""
    if not path.is_dir():
        raise UserError(f"run folder {path} not found; pass the folder a run wrote (see runs/)")
    state = read_status(path).get("state")
    if state is None:
        raise UserError(f"{path} is not an nlp-transfer run folder (no {STATUS_FILE}); pass a folder a run wrote")
    if state != "complete":
        raise UserError(f"{path}: the run is {state}, not complete; re-run it (or pass a complete run folder)")


def default_run_dir(root: str, recipe_name: str) -> Path:
    return Path(root) / f"{recipe_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def open_run_folder(path: Path, overwrite: bool) -> Iterator[RunFolder]:
    """Create the folder (refusing to clobber), mark it running, and mark it failed/interrupted on the way out."""
    replaced = _move_aside(path) if check_run_target(path, overwrite) else None
    path.mkdir(parents=True, exist_ok=True)
    folder = RunFolder(path)
    folder.mark("running", pid=os.getpid())
    with _marked_on_failure(folder, replaced):
        yield folder
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)


@contextmanager
def reopen_run_folder(path: Path) -> Iterator[RunFolder]:
    """An unfinished run folder, resumed in place (resume.check_resumable said it may be)."""
    folder = RunFolder(path)
    folder.mark("running", pid=os.getpid(), resumed_at=_now())
    with _marked_on_failure(folder, None):
        yield folder


@contextmanager
def _marked_on_failure(folder: RunFolder, replaced: Path | None) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        folder.mark("interrupted")
        _restore(replaced, folder.path)
        raise
    except BaseException as err:
        folder.mark("failed", error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        _restore(replaced, folder.path)
        raise


@contextmanager
def worker_folder(path: Path) -> Iterator[RunFolder]:
    """The run folder as an extra process of a multi-process run sees it: the main process owns and writes it."""
    yield RunFolder(path, writer=False)


def check_run_target(path: Path, overwrite: bool) -> bool:
    """True when an earlier run of ours is there and may be replaced; raise when the folder must not be touched."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return False
    state = read_status(path).get("state")
    if state is None:
        raise UserError(
            f"output folder {path} exists and is not an nlp-transfer run folder; choose another output.dir "
            "(it is never overwritten)"
        )
    if not overwrite:
        what = "a complete run" if state == "complete" else f"an unfinished run ({state})"
        raise UserError(f"output folder {path} already holds {what}; pass --overwrite to replace it, or set output.dir")
    return True


def _move_aside(path: Path) -> Path:
    aside = path.with_name(f".{path.name}.replaced-{int(time.time())}")
    os.replace(path, aside)
    return aside


def _restore(replaced: Path | None, path: Path) -> None:
    """Put the previous complete run back; keep the failed attempt beside it for inspection."""
    if replaced is None:
        return
    failed = path.with_name(f"{path.name}.failed-{int(time.time())}")
    os.replace(path, failed)
    os.replace(replaced, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
