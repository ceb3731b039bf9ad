"""A trained model, wherever it is: a run folder, a copy of one (downloaded from the Hub, or written by `export`),
or a Hub repo id that `push` wrote. Everything that reads a trained model (predict, evaluate, export, push, cluster)
opens it here.

What to load is decided by the files (LAYOUTS), not by the recipe's method: a merged export of a LoRA run is a
plain model folder even though its recipe says lora.

Opening a folder checks, before anything loads, that its model files are whole (none missing, JSON that parses,
safetensors not cut short) and that its tokenizer is the one recorded at training (runfolder.folder.TOKENIZER_RECORD): a
damaged folder is refused with the file and what to do, never half-loaded into a confident, meaningless answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from safetensors import SafetensorError
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from nlp_transfer.core.damage import file_damage
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.core.hardware import Runtime
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.assets import hub_offline, looks_like_hub_id
from nlp_transfer.methods.base import WeightsMismatch, load_model_folder
from nlp_transfer.methods.lora import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_CONFIG_FILE, Lora
from nlp_transfer.methods.pretrained import model_files
from nlp_transfer.methods.probe import PROBE_FILE, Probe
from nlp_transfer.runfolder.folder import (
    ADAPT_MARKER,
    EXPORT_FILE,
    RECIPE_FILE,
    RUN_INTERNALS,
    STATUS_FILE,
    TASK_FILE,
    layout_of,
    require_complete,
    tokenizer_problem,
)
from nlp_transfer.tasks import TASKS
from nlp_transfer.use.onnx_model import ONNX_FILES, OnnxModel, check_onnx_file, onnx_file_of


@dataclass(frozen=True)
class Layout:
    """How a folder stores its model (runfolder.folder.LAYOUT_MARKERS tells which), the files that make it up,
    and how to read it back."""

    name: str
    load: Callable[[Path, Any], nn.Module]
    files: Callable[[Path], list[Path]]


LAYOUTS = {
    "adapter": Layout(
        "adapter",
        Lora.load,
        lambda folder: [folder / name for name in (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_CONFIG_FILE)],
    ),
    "probe": Layout("probe", Probe.load, lambda folder: [*model_files(folder), folder / PROBE_FILE]),
    "plain": Layout("plain", load_model_folder, model_files),
}
# Errors a library raises on a file it cannot read; open_trained's checks catch the usual damage before them.
LOAD_ERRORS = (OSError, ValueError, RuntimeError, SafetensorError)


@dataclass(frozen=True)
class Trained:
    folder: Path  # the files: a run folder, a downloaded copy, or an export
    recipe: dict[str, Any]  # recipe.resolved.yaml: how it was trained
    origin: str  # what the user named: a path or a repo id (for messages and records)
    layout: Layout
    onnx: str | None = None  # the ONNX file the user named (model.onnx, model.int8.onnx): run by onnxruntime

    @property
    def backend(self) -> str:
        """What runs the model, for messages and records: pytorch, or onnx fp32 / onnx int8."""
        return "pytorch" if self.onnx is None else f"onnx {ONNX_FILES[self.onnx]}"

    @property
    def task(self) -> Any:
        return TASKS[self.recipe["task"]["name"]]

    @property
    def task_settings(self) -> dict[str, Any]:
        """The task as it was trained: the recipe's task section, with what the task resolved from the data
        (task.json, e.g. whether a QA model may answer "no answer") in place of the recipe's `auto`."""
        resolved = read_json_or_empty(self.folder / TASK_FILE)
        return {**self.recipe["task"], **{key: value for key, value in resolved.items() if key != "name"}}

    def load(self) -> nn.Module:
        """The trained model in eval mode (a LoRA adapter is loaded onto its base model, head included)."""
        try:
            with quiet_libraries():  # the weight-loading bar and load report stay off the terminal
                model = (
                    self.layout.load(self.folder, self.task)
                    if self.onnx is None
                    else OnnxModel(self.folder / self.onnx, self.folder)
                )
        except WeightsMismatch as err:
            raise UserError(f"{err}; {repair(self)}") from err
        except UserError:
            raise
        except LOAD_ERRORS as err:
            raise UserError(
                f"{self.origin}: the model could not be loaded ({_first_line(err)}); {repair(self)}"
            ) from err
        return model.eval()

    def on_device(self, runtime: Runtime | None = None) -> tuple[Runtime, PreTrainedTokenizerBase, nn.Module]:
        """What every predictor starts from: the runtime (the best device unless given), the tokenizer, and the
        model on that device."""
        runtime = runtime or Runtime.choose()
        return runtime, self.tokenizer(), self.load().to(runtime.device)

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer the model was trained with (open_trained checked its files against the record)."""
        try:
            with quiet_libraries():
                tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(self.folder)
        except LOAD_ERRORS as err:
            raise UserError(
                f"{self.origin}: the tokenizer could not be loaded ({_first_line(err)}); {repair(self)}"
            ) from err
        return tokenizer


def repair(trained: Trained | Path) -> str:
    """What to do about a damaged folder, by what it is: a run folder, an export, a Hub download, or a copy."""
    folder = trained.folder if isinstance(trained, Trained) else trained
    if (folder / STATUS_FILE).is_file():
        return "the run folder is damaged: train it again (its recipe, with --overwrite)"
    if (folder / EXPORT_FILE).is_file():
        return "the export is damaged: export the run again (nlp-transfer export RUN_DIR --output-dir ... --overwrite)"
    if any(part.startswith("models--") for part in folder.resolve().parts):
        return "the downloaded copy is damaged: delete it from the Hugging Face cache (hf cache delete), download again"
    return "the folder is damaged: copy or download it again"


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def open_trained(reference: str | Path, revision: str | None = None) -> Trained:
    """A complete run folder, a copy of one, or a Hub repo id (downloaded, or read from the cache when offline)."""
    origin = str(reference)
    path = Path(reference).expanduser()
    if onnx_file_of(path) is not None:  # an export's ONNX file: the folder around it, run by onnxruntime
        check_onnx_file(path, origin)
        return replace(_from_folder(path.parent, origin), onnx=path.name)
    if path.exists():
        if revision is not None:  # a folder has one version: the option would be ignored
            raise UserError(
                f"--revision {revision}: {origin} is a local folder, and --revision picks a branch, tag or commit of a "
                "Hub repo id; drop --revision"
            )
        return _from_folder(path, origin)
    if looks_like_hub_id(origin) and origin.count("/") == 1:
        return _from_folder(download(origin, revision), origin)
    raise UserError(f"{origin}: no such folder, and not a Hub repo id (owner/name); pass a run folder or a repo id")


def _from_folder(folder: Path, origin: str) -> Trained:
    if not folder.is_dir():
        raise UserError(f"{origin}: not a folder; pass a run folder, a downloaded copy of one, or a Hub repo id")
    if (folder / ADAPT_MARKER).is_file():
        raise UserError(
            f"{origin} is a domain-adaptation folder (several models); pass one of its stage runs, e.g. "
            f"{folder / 'stages' / 'finetune'} (its adapt_table.md names each row's model)"
        )
    if (folder / STATUS_FILE).is_file():
        require_complete(folder)  # a run folder: only a finished run holds a model to trust
    if not (folder / RECIPE_FILE).is_file():
        raise UserError(
            f"{origin}: not an nlp-transfer model (no {RECIPE_FILE}); pass a run folder, a copy written by push or "
            "export, or a repo id that nlp-transfer pushed"
        )
    layout = layout_of(folder)
    if layout is None:
        raise UserError(
            f"{origin}: no model files (config.json or {ADAPTER_CONFIG_FILE}); the folder is incomplete "
            "(copy or re-download it)"
        )
    try:
        recipe = yaml.safe_load((folder / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{folder / RECIPE_FILE}: unreadable ({err}); the folder is damaged") from err
    if not isinstance(recipe, dict) or recipe.get("task", {}).get("name") not in TASKS:
        raise UserError(f"{folder / RECIPE_FILE}: not a recipe nlp-transfer wrote (no known task.name)")
    _check_whole(folder, LAYOUTS[layout])
    return Trained(folder=folder, recipe=recipe, origin=origin, layout=LAYOUTS[layout])


def _check_whole(folder: Path, layout: Layout) -> None:
    """Every model file there and readable, and the tokenizer the one recorded at training: checked before loading,
    so a damaged folder is named with its file instead of failing inside a library (or loading a tokenizer that
    turns every word into [UNK])."""
    optional = [folder / TASK_FILE] if (folder / TASK_FILE).exists() else []
    for path in [*layout.files(folder), *optional]:
        problem = file_damage(path)
        if problem is not None:
            raise UserError(f"{path} {problem}; {repair(folder)}")
    problem = tokenizer_problem(folder)
    if problem is not None:
        raise UserError(f"{problem}; {repair(folder)}")


def download(repo_id: str, revision: str | None) -> Path:
    """The repo's files through the Hugging Face cache: downloaded when online, the cached copy when offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f"{repo_id}@{revision}" if revision else repo_id
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=hub_offline()))
    except GatedRepoError as err:
        raise UserError(f"{at} is gated on the Hub: accept its terms there and log in (HF_TOKEN)") from err
    except RepositoryNotFoundError as err:
        raise UserError(
            f"{at}: no such model repo on the Hub (or it is private: set HF_TOKEN), and no local folder of that name"
        ) from err
    except RevisionNotFoundError as err:
        raise UserError(f"{at}: revision '{revision}' not found in the repo; check --revision") from err
    except LocalEntryNotFoundError as err:
        why = "offline mode (HF_HUB_OFFLINE=1)" if hub_offline() else "the Hub could not be reached"
        raise UserError(
            f"{at}: no folder of that name here, and as a Hub repo: {why} and it is not in the local Hugging Face "
            "cache; check the path, go online once, or pass a folder holding a downloaded copy"
        ) from err
    except HfHubHTTPError as err:
        raise UserError(f"{at}: download failed: {str(err).splitlines()[0]}") from err


def shared_files(folder: Path) -> list[Path]:
    """The files that make up the model and its description (what push uploads and export copies), sorted.

    Everything in the folder except the record of training on this machine (RUN_INTERNALS) and hidden files."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or relative.parts[0] in RUN_INTERNALS or any(p.startswith(".") for p in relative.parts):
            continue
        found.append(path)
    return found
