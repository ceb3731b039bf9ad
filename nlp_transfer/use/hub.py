"""`nlp-transfer push`: a trained model (a complete run folder, or an export) to a Hugging Face Hub repo.

What goes up is what trained.shared_files() names (the model or adapter with its head, the tokenizer, the recipe,
metrics and environment record) plus a card rendered for the repo. Every file goes in ONE commit, so a failure at
any point (an upload, the commit) leaves the repo as it was: nothing is half-pushed, and nothing is recorded as
pushed until the Hub has answered the commit.

The token comes from HF_TOKEN or the user's `hf auth login`; it is handed to huggingface_hub and never printed,
logged or written by us.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import hub_offline
from nlp_transfer.methods.lora import ADAPTER_CONFIG_FILE
from nlp_transfer.report.card import model_card
from nlp_transfer.runfolder.folder import CARD_FILE, PUSHES_FILE, STATUS_FILE, RunFolder
from nlp_transfer.use.trained import Trained, open_trained, shared_files

# Files that belong to a model folder's layout. A push deletes those of them already in the repo that it does not
# upload (an adapter pushed over a full model, say), in the same commit: otherwise the stale adapter_config.json
# would make the repo load as an adapter. Anything else in the repo (a user's own files) is left alone.
MODEL_FILE_PATTERNS = (
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "base_model_config.json",
    "probe.json",
    "thresholds.json",
    "label_prior.json",  # runfolder.folder.LABEL_PRIOR_FILE: a stale one would correct the new model's predictions
    "export.json",
    "tokenizer_files.json",
    "model.onnx",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


@dataclass
class PushOptions:
    repo_id: str
    private: bool = False
    revision: str | None = None  # a branch; created from main when it does not exist
    commit_message: str | None = None


@dataclass
class Upload:
    """One file of the push: where it goes in the repo, and the file (or, for the rendered card, its bytes)."""

    path_in_repo: str
    content: Path | bytes

    @property
    def size(self) -> int:
        return self.content.stat().st_size if isinstance(self.content, Path) else len(self.content)


@dataclass
class PushPlan:
    trained: Trained
    uploads: list[Upload]
    warnings: list[str]

    @property
    def card(self) -> str:
        card = next(u.content for u in self.uploads if u.path_in_repo == CARD_FILE)
        return card.decode("utf-8") if isinstance(card, bytes) else card.read_text(encoding="utf-8")


def check_repo_id(repo_id: str) -> None:
    """owner/name as the Hub accepts it (huggingface_hub's own validation), with the owner required: a push needs
    to say whose namespace it goes to."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
        valid = repo_id.count("/") == 1 and not repo_id.startswith("/") and not repo_id.endswith("/")
    except HFValidationError:
        valid = False
    if not valid:
        raise UserError(
            f"--repo-id '{repo_id}': expected owner/name (your user or organisation, then the model's name; letters, "
            "digits, '-', '_' and '.'; no '--' or '..'; at most 96 characters), e.g. --repo-id alice/sst2-minilm"
        )


def plan_push(run_dir: Path, repo_id: str) -> PushPlan:
    """The files to upload (model files are read from disk as they upload) and what to warn about."""
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such folder; pass a complete run folder (see runs/) or an export folder")
    trained = open_trained(run_dir)  # refuses failed, unfinished and foreign folders with their own message
    files = [f for f in shared_files(trained.folder) if f.relative_to(trained.folder).as_posix() != CARD_FILE]
    uploads = [Upload(f.relative_to(trained.folder).as_posix(), f) for f in files]
    uploads.append(Upload(CARD_FILE, model_card(trained.folder, repo_id=repo_id).encode("utf-8")))
    uploads.sort(key=lambda u: u.path_in_repo)
    return PushPlan(trained, uploads, _warnings(trained))


def _warnings(trained: Trained) -> list[str]:
    if trained.layout.name != "adapter":
        return []
    adapter = json.loads((trained.folder / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
    base = str(adapter.get("base_model_name_or_path") or "")
    if base.startswith(("/", ".", "~")) or Path(base).exists():
        return [
            f"the adapter's base model is the local folder {base}, not a Hub id: others cannot load the adapter "
            "without that folder. If it is a copy of a Hub model, set card.base_model in the recipe and re-run"
        ]
    return []


def describe(plan: PushPlan, repo_id: str) -> str:
    """What a push would upload (--dry-run): the files with their sizes, then the card."""
    lines = [f"would push {len(plan.uploads)} files from {plan.trained.folder} to {repo_id}:"]
    lines += [f"  {u.path_in_repo}  ({_size(u.size)})" for u in plan.uploads]
    return "\n".join([*lines, "", f"--- {CARD_FILE} ---", plan.card])


def push(plan: PushPlan, options: PushOptions) -> dict[str, Any]:
    """Create the repo (and branch) when missing, upload everything in one commit, record it; returns the record."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if hub_offline():
        raise UserError("push: offline mode is on (HF_HUB_OFFLINE=1); unset it to push, or use --dry-run")
    token = get_token()
    if not token:
        raise UserError("push: no Hugging Face token; set HF_TOKEN or run `hf auth login` (use --dry-run to preview)")
    api = HfApi(token=token)
    repo = options.repo_id
    step = "creating the repo"
    network: tuple[type[Exception], ...] = (OSError, *_network_errors())
    try:
        api.create_repo(repo, private=options.private, exist_ok=True, repo_type="model")
        if options.private and not api.model_info(repo).private:  # create_repo leaves an existing repo as it is
            raise UserError(
                f"push: {repo} already exists and is public, so --private would not keep this model private; "
                "nothing was uploaded. Make the repo private in its settings on the Hub, or push without --private"
            )
        if options.revision:
            step = f"creating branch {options.revision}"
            api.create_branch(repo, branch=options.revision, exist_ok=True)
        step = "listing the repo's files"
        stale = _stale_files(api.list_repo_files(repo, revision=options.revision), plan)
        step = "uploading"
        operations: list[Any] = [
            CommitOperationAdd(path_in_repo=u.path_in_repo, path_or_fileobj=u.content) for u in plan.uploads
        ]
        operations += [CommitOperationDelete(path_in_repo=name) for name in stale]
        commit = api.create_commit(
            repo,
            operations=operations,
            commit_message=options.commit_message or _default_message(plan.trained),
            revision=options.revision,
        )
    except UserError:
        raise
    except HfHubHTTPError as err:
        sys.stderr.write("\n")  # the client's upload progress bar stops mid-line
        raise UserError(_http_failure(err, repo, step)) from err
    except RuntimeError as err:  # the client's "Error while uploading 'x' to the Hub", raised from an HTTP error
        if not isinstance(err.__cause__, network):
            raise
        sys.stderr.write("\n")
        cause = err.__cause__
        why = _http_failure(cause, repo, step) if isinstance(cause, HfHubHTTPError) else _first_line(cause)
        raise UserError(f"{_first_line(err).rstrip('.')}: {why}") from err
    except network as err:  # the network: connection refused, timeouts, TLS
        sys.stderr.write("\n")
        raise UserError(
            f"push to {repo} failed while {step}: {type(err).__name__}: {_first_line(err)}; nothing was committed, "
            "check your connection (or HF_ENDPOINT) and re-run"
        ) from err
    record = {
        "repo_id": repo,
        "revision": options.revision or "main",
        "commit": commit.oid,
        "commit_url": commit.commit_url,
        "files": [u.path_in_repo for u in plan.uploads],
        "deleted": stale,
        "pushed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _record(plan.trained.folder, record)
    return record


def _stale_files(in_repo: list[str], plan: PushPlan) -> list[str]:
    uploading = {u.path_in_repo for u in plan.uploads}
    return sorted(
        name
        for name in in_repo
        if name not in uploading and any(fnmatch.fnmatchcase(name, p) for p in MODEL_FILE_PATTERNS)
    )


def _http_failure(err: Any, repo: str, step: str) -> str:
    status = err.response.status_code if err.response is not None else None
    nothing = "nothing was committed (a push is one commit: all files or none)"
    if status in (401, 403):
        return (
            f"push to {repo}: the Hub refused the token (HTTP {status}) while {step}; {nothing}. Check that HF_TOKEN "
            "(or your login) is valid and has write access to that namespace"
        )
    return f"push to {repo} failed while {step} (HTTP {status}: {_first_line(err)}); {nothing}. Re-run push"


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _default_message(trained: Trained) -> str:
    recipe = trained.recipe
    return f"nlp-transfer: {recipe['task']['name']} with {recipe['method']['name']} on {recipe['model']['name']}"


def _record(folder: Path, record: dict[str, Any]) -> None:
    """Append to pushes.json (written through a temporary file); only a run folder keeps the record."""
    if not (folder / STATUS_FILE).is_file():
        return
    path = folder / PUSHES_FILE
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    RunFolder(folder).write_json(PUSHES_FILE, [*earlier, record])


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _network_errors() -> tuple[type[Exception], ...]:
    """The Hub client's HTTP library's own errors (connection refused, timeouts, TLS): the bases of its HTTP error,
    found through it rather than by naming a transport library the client may change."""
    from huggingface_hub.errors import HfHubHTTPError

    return tuple(
        base for base in HfHubHTTPError.__mro__[1:] if issubclass(base, Exception) and base.__module__ != "builtins"
    )
