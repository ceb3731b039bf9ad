"""A local, in-memory emulation of the Hugging Face Hub HTTP API, for tests that run the real `huggingface_hub` client.

`FakeHub` serves, on 127.0.0.1 (a free port), the endpoints that `huggingface_hub` (2.4) calls for the push-and-reload
cycle, with the request and response shapes read from the client's source (hf_api.py, _commit_api.py, lfs.py,
file_download.py, _snapshot_download.py):

    create_repo            POST /api/repos/create                              (409 when it exists: exist_ok works)
    create_branch          POST /api/models/{repo}/branch/{branch}             (409 when it exists)
    create_commit          POST /api/models/{repo}/preupload/{rev}             regular or LFS, per file
                           POST /{repo}.git/info/lfs/objects/batch             answered with the "basic" transfer
                           PUT  /fake-lfs-storage/{upload id}                  the "S3" upload (no Hub auth, like S3)
                           POST /{repo}.git/info/lfs/objects/verify            the verify step the batch answer asks for
                           POST /api/validate-yaml                             when README.md is committed
                           POST /api/models/{repo}/commit/{rev}                ndjson: header, file, lfsFile, deleted*
    repo_info/model_info   GET  /api/models/{repo}[/revision/{rev}]            siblings and sha
    list_repo_tree         GET  /api/models/{repo}/tree/{rev}[/{path}]          snapshot_download lists files with it
    list_repo_refs         GET  /api/models/{repo}/refs
    list_repo_commits      GET  /api/models/{repo}/commits/{rev}
    hf_hub_download        HEAD, GET /{repo}/resolve/{rev}/{path}              X-Repo-Commit, ETag, X-Linked-*
    whoami                 GET  /api/whoami-v2

Model repos only (namespace/name). Uploads must not go through Xet: `huggingface_hub` picks Xet on the client side
whenever `hf_xet` is importable (`_commit_api._upload_files` checks `is_xet_available()` and never asks the server), so
no server answer can steer it away; only `HF_HUB_DISABLE_XET` can, and the `fake_hub` fixture sets it. Downloads use
Xet only when a HEAD answer carries `X-Xet-Hash`, which this server never sends. The Xet token routes answer 501 with
an explanation, so a test that forgot the patch fails loudly instead of talking to a CAS server that does not exist.

Usage:

    def test_push(fake_hub: FakeHub) -> None:          # the fixture also patches the client (see `patch_client`)
        api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
        ...
        assert fake_hub.files("fake-user/model") == {".gitattributes": ..., "config.json": b"{...}"}
        fake_hub.fail_on = "lfs-upload"                # the next LFS upload answers 500 (see STEPS)

Like the real Hub, a new repo starts with an "initial commit" holding a `.gitattributes` (pass `gitattributes=False`
to start empty); `files()` includes it.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

__all__ = [
    "DEFAULT_GITATTRIBUTES",
    "STEPS",
    "FakeHub",
    "FakeHubError",
    "RecordedRequest",
    "fake_hub",
    "patch_client",
]

# The .gitattributes the Hub puts in a new model repo's initial commit; preupload reads the LFS patterns from the
# revision's .gitattributes, as the Hub does, so this list decides which files go LFS.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
        "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
        "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
        "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)  # fmt: skip

# The Hub refuses regular (non-LFS) files from 10 MiB on.
LFS_THRESHOLD = 10 * 1024 * 1024

# Names of the steps a request can be routed to: `RecordedRequest.step` and `FakeHub.fail_on` use them.
STEPS = frozenset(
    {
        "create-repo", "delete-repo", "create-branch", "delete-branch", "whoami", "validate-yaml", "agent-harnesses",
        "preupload", "lfs-batch", "lfs-upload", "lfs-verify", "commit", "repo-info", "tree", "refs", "commits",
        "resolve", "xet-token", "unhandled",
    }
)  # fmt: skip

# Steps that need a valid token even on a public repo.
WRITE_STEPS = frozenset(
    {"create-repo", "delete-repo", "create-branch", "delete-branch", "preupload", "lfs-batch", "lfs-verify", "commit"}
)

_SHA = re.compile(r"[0-9a-f]{40}")


def _now() -> str:
    """The Hub's date format ('%Y-%m-%dT%H:%M:%S.%fZ', milliseconds), which `huggingface_hub.parse_datetime` reads."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_oid(data: bytes) -> str:
    """Git's blob id (sha1 of 'blob <size>\\0' + data): the Hub's oid and ETag of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --------------------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Blob:
    """A committed file. LFS files are served like the Hub serves them: ETag = sha256, git oid = the pointer's."""

    data: bytes
    lfs: bool = False

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @cached_property
    def oid(self) -> str:
        """The git blob id: of the content for a regular file, of the LFS pointer for an LFS file."""
        return git_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    @property
    def preupload_oid(self) -> str:
        """What preupload reports for an existing file: the client compares it with sha256 (LFS) or git sha1."""
        return self.sha256 if self.lfs else git_oid(self.data)


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    files: dict[str, Blob]
    date: str = field(default_factory=_now)


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head commit sha
    commits: dict[str, Commit] = field(default_factory=dict)  # sha -> commit
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes uploaded through the LFS API
    created_at: str = field(default_factory=_now)


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, without the query string (still percent-encoded)
    query: str
    authorization: str | None  # the Authorization header as received, e.g. "Bearer hf_x"
    step: str  # one of STEPS
    status: int = 0  # the status answered (0 while in flight)


class FakeHubError(Exception):
    """An error answer, shaped like the Hub's: JSON {"error": ...} plus X-Error-Code / X-Error-Message headers."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
        self.body = body or {}  # extra fields of the JSON answer


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class _Request:
    method: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    params: dict[str, str]  # the route's groups, percent-decoded
    authenticated: bool

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise FakeHubError(400, f"Invalid JSON body: {error}") from error


# Routes: (methods, pattern over the still-encoded path, step, handler name). Segments are matched before decoding,
# so a revision sent as "refs%2Fpr%2F1" stays one segment; file paths inside /resolve/ keep their slashes.
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], str, str]] = [
    (frozenset({methods}) if isinstance(methods, str) else frozenset(methods), re.compile(pattern), step, handler)
    for methods, pattern, step, handler in [
        ("POST", r"/api/repos/create", "create-repo", "_create_repo"),
        ("DELETE", r"/api/repos/delete", "delete-repo", "_delete_repo"),
        ("GET", r"/api/whoami-v2", "whoami", "_whoami"),
        ("POST", r"/api/validate-yaml", "validate-yaml", "_validate_yaml"),
        ("GET", r"/api/agent-harnesses", "agent-harnesses", "_agent_harnesses"),
        ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload", "_preupload"),
        ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit", "_commit"),
        ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", "create-branch", "_create_branch"),
        ("DELETE", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", "delete-branch", "_delete_branch"),
        ("GET", rf"/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?", "repo-info", "_repo_info"),
        ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree", "_tree"),
        ("GET", rf"/api/models/{_REPO}/refs", "refs", "_refs"),
        ("GET", rf"/api/models/{_REPO}/commits/(?P<rev>[^/]+)", "commits", "_commits"),
        (("GET", "POST"), rf"/api/models/{_REPO}/xet-(?:read|write)-token/(?P<rev>[^/]+)", "xet-token", "_xet"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs-batch", "_lfs_batch"),
        ("POST", rf"/{_REPO}\.git/info/lfs/objects/verify", "lfs-verify", "_lfs_verify"),
        ("PUT", r"/fake-lfs-storage/(?P<upload_id>[^/]+)", "lfs-upload", "_lfs_upload"),
        (("GET", "HEAD"), rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve", "_resolve"),
    ]
]


# ----------------------------------------------------------------------------------------------------------- hub


class FakeHub:
    """The fake Hub: an HTTP server plus the state it serves. Use as a context manager (or `start()` / `close()`).

    Args:
        token: the one valid token; requests must send `Authorization: Bearer <token>`. A request carrying any other
            token gets 401 on every endpoint (as on the Hub); a request carrying none gets 401 on write endpoints and
            "Repository not found" on private repos.
        user: the token's user name (whoami, and the namespace of a repo created without one).
        gitattributes: start new repos with the Hub's default `.gitattributes` (an "initial commit"), as the Hub does.

    Attributes tests use:
        url: "http://127.0.0.1:<port>", to pass as `endpoint=`.
        requests: every request received, in order (`RecordedRequest`).
        fail_on: a step name (or several) from STEPS: matching requests answer 500 until it is reset to None, or for
            `fail_times` requests when that is set. The client retries 500s on preupload, lfs-batch and lfs-upload
            (5 retries; the fixture removes the waits), but not on commit.
        repos: repo id -> `Repo`, the raw state.
        internal_errors: exceptions the handlers raised (a bug here, or a request the fake does not understand).
    """

    def __init__(self, token: str = "hf_fake_token", *, user: str = "fake-user", gitattributes: bool = True) -> None:
        self.token = token
        self.user = user
        self.gitattributes = gitattributes
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[Exception] = []  # exceptions raised while handling requests (500 answered)
        self.fail_times: int | None = None
        self._fail_on: frozenset[str] = frozenset()
        self._uploads: dict[str, tuple[str, str, int]] = {}  # upload id -> (repo id, sha256, size), from lfs-batch
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.block_on_close = False  # keep-alive connections of the shared httpx client must not block close()
        server.hub = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fakehub", daemon=True
        )  # a short poll: close() waits up to one interval
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ what tests read and set

    @property
    def fail_on(self) -> frozenset[str]:
        return self._fail_on

    @fail_on.setter
    def fail_on(self, steps: str | Collection[str] | None) -> None:
        chosen = frozenset() if steps is None else frozenset({steps} if isinstance(steps, str) else steps)
        unknown = chosen - STEPS
        if unknown:  # a typo would otherwise fail nothing, silently
            raise ValueError(f"unknown step(s) {sorted(unknown)}; steps are {sorted(STEPS)}")
        self._fail_on = chosen

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """path -> bytes committed at `revision` (a branch or a commit sha). Includes the initial .gitattributes."""
        with self._lock:
            return {path: blob.data for path, blob in self._commit_at(repo_id, revision).files.items()}

    def lfs_paths(self, repo_id: str, revision: str = "main") -> set[str]:
        """The paths stored as LFS files at `revision`."""
        with self._lock:
            return {path for path, blob in self._commit_at(repo_id, revision).files.items() if blob.lfs}

    def head(self, repo_id: str, branch: str = "main") -> str:
        """The commit sha `branch` points to."""
        with self._lock:
            return self.repos[repo_id].branches[branch]

    def history(self, repo_id: str, revision: str = "main") -> list[Commit]:
        """The commits reachable from `revision`, newest first (the initial commit last)."""
        with self._lock:
            commit: Commit | None = self._commit_at(repo_id, revision)
            history = []
            while commit is not None:
                history.append(commit)
                commit = self.repos[repo_id].commits.get(commit.parent) if commit.parent else None
            return history

    def steps(self) -> list[str]:
        """The step of each request received so far, in order."""
        with self._lock:
            return [request.step for request in self.requests]

    def seed(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        private: bool = False,
        lfs: Collection[str] = (),
        message: str = "seed",
    ) -> str:
        """Commit `files` directly (no HTTP), creating the repo and branch as needed; returns the commit sha.

        For download tests that need a repo without pushing one; `lfs` names the paths to store as LFS files.
        """
        with self._lock:
            repo = self.repos.get(repo_id) or self._new_repo(repo_id, private=private)
            parent = repo.branches.get(branch) or repo.branches["main"]
            tree = dict(repo.commits[parent].files)
            for path, data in files.items():
                tree[path] = Blob(data, lfs=path in lfs)
                if path in lfs:
                    repo.lfs_objects[hashlib.sha256(data).hexdigest()] = data
            return self._add_commit(repo, branch, parent, message, "", tree).sha

    # ------------------------------------------------------------------ state helpers (call with the lock held)

    def _new_repo(self, repo_id: str, *, private: bool) -> Repo:
        repo = Repo(repo_id, private=private)
        initial = {".gitattributes": Blob(DEFAULT_GITATTRIBUTES.encode())} if self.gitattributes else {}
        self.repos[repo_id] = repo
        self._add_commit(repo, "main", None, "initial commit", "", initial)
        return repo

    @staticmethod
    def _add_commit(repo: Repo, branch: str, parent: str | None, title: str, message: str, files: dict) -> Commit:
        commit = Commit(secrets.token_hex(20), parent, title, message, files)
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        return commit

    def _commit_at(self, repo_id: str, revision: str) -> Commit:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise KeyError(f"no repo {repo_id!r} on the FakeHub (repos: {sorted(self.repos)})")
        return self._resolve_revision(repo, revision)

    @staticmethod
    def _resolve_revision(repo: Repo, revision: str) -> Commit:
        sha = repo.branches.get(revision) or (revision if revision in repo.commits else None)
        if sha is None:
            raise FakeHubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return repo.commits[sha]

    def _readable_repo(self, request: _Request) -> Repo:
        """The repo, or the Hub's answer for a missing (or private and anonymous) one: 401 anonymous, 404 signed in."""
        repo = self.repos.get(request.params["repo"])
        if repo is None or (repo.private and not request.authenticated):
            status = 404 if request.authenticated else 401
            raise FakeHubError(status, "Repository not found", code="RepoNotFound")
        return repo

    def _lfs_patterns(self, commit: Commit) -> list[str]:
        attributes = commit.files.get(".gitattributes")
        text = attributes.data.decode(errors="replace") if attributes else ""
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line.split()[1:]]

    def _wants_lfs(self, commit: Commit, path: str, size: int, sample: bytes) -> bool:
        """The Hub's rule: LFS when .gitattributes says so, when >= 10 MiB, or when the content looks binary."""
        if size == 0:
            return False
        name = path.rsplit("/", 1)[-1]
        matches = any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in self._lfs_patterns(commit))
        return matches or size >= LFS_THRESHOLD or b"\0" in sample

    # ------------------------------------------------------------------ HTTP dispatch

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        method = handler.command
        step, route_handler, params = "unhandled", None, {}
        for methods, pattern, route_step, name in _ROUTES:
            match = pattern.fullmatch(split.path)
            if match and method in methods:
                step, route_handler = route_step, getattr(self, name)
                params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                break
        record = RecordedRequest(method, split.path, split.query, handler.headers.get("Authorization"), step)
        with self._lock:
            self.requests.append(record)
        body = handler.read_body()  # always drain the body: the connection is kept alive
        try:
            authenticated = self._check_auth(record)
            if step in WRITE_STEPS and not authenticated:
                raise FakeHubError(401, "You must be authenticated to do this (send 'Authorization: Bearer <token>')")
            self._maybe_fail(step)
            if route_handler is None:
                raise FakeHubError(404, f"FakeHub has no route for {method} {split.path} (model repos only)")
            request = _Request(method, parse_qs(split.query), handler.headers, body, params, authenticated)
            reply = route_handler(request)
        except FakeHubError as error:
            # Header values must be latin-1: keep any non-ASCII path in the message readable but encodable.
            headers = {"X-Error-Message": error.message.encode("ascii", "backslashreplace").decode(), **error.headers}
            if error.code:
                headers["X-Error-Code"] = error.code
            reply = _json({"error": error.message, **error.body}, error.status, headers)
        except Exception as error:  # a FakeHub bug or a malformed request: answer (a dropped connection is retried)
            with self._lock:
                self.internal_errors.append(error)
            reply = _json({"error": f"FakeHub internal error: {error!r}"}, 500)
        record.status = reply.status
        handler.send(reply, head_only=method == "HEAD")

    def _check_auth(self, record: RecordedRequest) -> bool:
        """True when the valid token was sent, False when none was; 401 for any other (the Hub rejects bad tokens)."""
        if record.authorization is None:
            return False
        if record.authorization != f"Bearer {self.token}":
            message = "Invalid credentials in Authorization header"
            raise FakeHubError(401, message, headers={"WWW-Authenticate": 'Bearer realm="FakeHub"'})
        return True

    def _maybe_fail(self, step: str) -> None:
        with self._lock:
            if step not in self._fail_on:
                return
            if self.fail_times is not None:
                if self.fail_times <= 0:
                    return
                self.fail_times -= 1
        raise FakeHubError(500, f"FakeHub: injected failure at step {step!r}")

    # ------------------------------------------------------------------ account

    def _whoami(self, request: _Request) -> _Reply:
        if not request.authenticated:
            raise FakeHubError(401, "Invalid user token.")
        token_info = {"displayName": "fakehub", "role": "write"}
        return _json({"type": "user", "id": "0" * 24, "name": self.user, "fullname": self.user, "orgs": [],
                      "auth": {"type": "access_token", "accessToken": token_info}})  # fmt: skip

    def _agent_harnesses(self, request: _Request) -> _Reply:
        return _json({"standardEnvVars": [], "harnesses": {}})  # telemetry lookup: "no agents known"

    def _validate_yaml(self, request: _Request) -> _Reply:
        """The README.md metadata check create_commit makes before uploading: the front matter must be a YAML map."""
        import yaml

        content = request.json().get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
        if match:
            try:
                metadata = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                return _json({"errors": [{"message": f"Invalid YAML: {error}"}], "warnings": []}, 400)
            if metadata is not None and not isinstance(metadata, dict):
                return _json({"errors": [{"message": "Metadata must be a YAML mapping"}], "warnings": []}, 400)
        return _json({"errors": [], "warnings": []})

    def _xet(self, request: _Request) -> _Reply:
        message = (
            "FakeHub does not emulate Xet storage. Set HF_HUB_DISABLE_XET=1 (the fake_hub fixture patches "
            "huggingface_hub.constants.HF_HUB_DISABLE_XET) so uploads use the LFS 'basic' transfer."
        )
        raise FakeHubError(501, message)

    # ------------------------------------------------------------------ repos and branches

    def _create_repo(self, request: _Request) -> _Reply:
        payload = request.json()
        if payload.get("type") not in (None, "model"):
            raise FakeHubError(400, f"FakeHub only emulates model repos, not {payload['type']!r}")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        private = payload.get("visibility", "private" if payload.get("private") else "public") == "private"
        with self._lock:
            if repo_id in self.repos:
                # create_repo(exist_ok=True) reads "url" from the 409 answer too
                raise FakeHubError(409, "You already created this model repo", body={"url": f"{self.url}/{repo_id}"})
            self._new_repo(repo_id, private=private)
        return _json({"url": f"{self.url}/{repo_id}", "name": repo_id, "id": secrets.token_hex(12)})

    def _delete_repo(self, request: _Request) -> _Reply:
        payload = request.json()
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        with self._lock:
            if self.repos.pop(repo_id, None) is None:
                raise FakeHubError(404, "Repository not found", code="RepoNotFound")
        return _json({})

    def _create_branch(self, request: _Request) -> _Reply:
        branch, starting_point = request.params["branch"], request.json().get("startingPoint", "main")
        with self._lock:
            repo = self._readable_repo(request)
            if branch in repo.branches:
                raise FakeHubError(409, f"Reference already exists: refs/heads/{branch}")
            if _SHA.fullmatch(branch):
                raise FakeHubError(400, f"Invalid branch name: {branch} (looks like a commit sha)")
            repo.branches[branch] = self._resolve_revision(repo, starting_point).sha
        return _json({})

    def _delete_branch(self, request: _Request) -> _Reply:
        with self._lock:
            repo = self._readable_repo(request)
            if request.params["branch"] == "main" or repo.branches.pop(request.params["branch"], None) is None:
                raise FakeHubError(400, f"Cannot delete branch {request.params['branch']!r}")
        return _json({})

    # ------------------------------------------------------------------ upload: preupload, LFS, commit

    def _preupload(self, request: _Request) -> _Reply:
        """Decide regular vs LFS per file, and report the oid of the file already there (the client skips no-ops)."""
        files = request.json().get("files", [])
        with self._lock:
            repo = self._readable_repo(request)
            commit = self._resolve_revision(repo, request.params["rev"])
            answer = []
            for entry in files:
                path, size, sample = entry["path"], int(entry["size"]), base64.b64decode(entry.get("sample", ""))
                existing = commit.files.get(path)
                mode = "lfs" if self._wants_lfs(commit, path, size, sample) else "regular"
                answer.append({"path": path, "uploadMode": mode, "shouldIgnore": False,
                               "oid": existing.preupload_oid if existing else None})  # fmt: skip
        return _json({"files": answer, "commitOid": commit.sha})

    def _lfs_batch(self, request: _Request) -> _Reply:
        """The git-lfs batch API, answered with the "basic" transfer: one presigned-like PUT URL per missing object."""
        payload = request.json()
        if payload.get("operation") != "upload":
            raise FakeHubError(400, "FakeHub's LFS batch API only handles uploads")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise FakeHubError(400, f"FakeHub only offers the 'basic' LFS transfer, not {payload['transfers']}")
        objects = []
        with self._lock:
            repo = self._readable_repo(request)
            for item in payload.get("objects", []):
                oid, size = item["oid"], int(item["size"])
                stored = repo.lfs_objects.get(oid)
                if stored is not None and len(stored) == size:
                    objects.append({"oid": oid, "size": size})  # no "actions": already stored, the client skips it
                    continue
                upload_id = secrets.token_urlsafe(16)
                self._uploads[upload_id] = (repo.repo_id, oid, size)
                verify = f"{self.url}/{repo.repo_id}.git/info/lfs/objects/verify"
                actions = {"upload": {"href": f"{self.url}/fake-lfs-storage/{upload_id}"}, "verify": {"href": verify}}
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": actions})
        # "transfer" must be "basic" (not "xet" or "multipart": no chunk_size header, so the client PUTs once).
        return _json(
            {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"}
        )

    def _lfs_upload(self, request: _Request) -> _Reply:
        """The storage PUT: only to a URL handed out by lfs-batch, and the bytes must match the announced oid/size."""
        with self._lock:
            target = self._uploads.get(request.params["upload_id"])
            if target is None:
                raise FakeHubError(403, "Unknown or already used upload URL")
            repo_id, oid, size = target
            if len(request.body) != size or hashlib.sha256(request.body).hexdigest() != oid:
                raise FakeHubError(400, f"Uploaded content does not match oid {oid} / size {size}")
            if repo_id in self.repos:
                self.repos[repo_id].lfs_objects[oid] = request.body
            del self._uploads[request.params["upload_id"]]
        return _Reply(200, headers={"ETag": f'"{hashlib.md5(request.body).hexdigest()}"'})

    def _lfs_verify(self, request: _Request) -> _Reply:
        payload = request.json()
        with self._lock:
            repo = self._readable_repo(request)
            stored = repo.lfs_objects.get(payload.get("oid", ""))
        if stored is None or len(stored) != payload.get("size"):
            raise FakeHubError(404, f"LFS object {payload.get('oid')} not found")
        return _json({"success": True})

    def _commit(self, request: _Request) -> _Reply:
        """Apply an ndjson commit atomically: validate every line first, then move the branch (or change nothing)."""
        if request.query.get("create_pr"):
            raise FakeHubError(400, "FakeHub does not emulate pull requests (create_pr)")
        try:
            lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise FakeHubError(400, f"Invalid ndjson commit payload: {error}") from error
        if not lines or lines[0].get("key") != "header":
            raise FakeHubError(400, "The first line of a commit payload must be its header")
        header = lines[0]["value"]
        branch = request.params["rev"]
        with self._lock:
            repo = self._readable_repo(request)
            if branch not in repo.branches:
                raise FakeHubError(404, f"Invalid rev id: {branch} (commits go to a branch)", code="RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            parent = header.get("parentCommit")
            if parent is not None and not head.sha.startswith(parent):
                raise FakeHubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(head.files)
            for line in lines[1:]:
                self._apply(repo, head, tree, line.get("key"), line.get("value", {}))
            commit = self._add_commit(repo, branch, head.sha, header["summary"], header.get("description", ""), tree)
        url = f"{self.url}/{repo.repo_id}/commit/{commit.sha}"
        return _json({"success": True, "commitOid": commit.sha, "commitUrl": url, "hookOutput": ""})

    def _apply(self, repo: Repo, head: Commit, tree: dict[str, Blob], key: str | None, value: dict) -> None:
        path = value.get("path", "")
        if key == "file":
            data = (
                base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
            )
            if self._wants_lfs(head, path, len(data), data[:512]):  # the Hub refuses binaries outside LFS
                raise FakeHubError(400, f"Your push was rejected: {path} must be uploaded with LFS")
            tree[path] = Blob(data)
        elif key == "lfsFile":
            stored = repo.lfs_objects.get(value.get("oid", ""))
            if stored is None or ("size" in value and len(stored) != value["size"]):
                message = f"Your push was rejected because an LFS pointer pointed to a file that does not exist: {path}"
                raise FakeHubError(400, message)
            tree[path] = Blob(stored, lfs=True)
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise FakeHubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            for name in [name for name in tree if name.startswith(prefix)]:
                del tree[name]
        else:
            raise FakeHubError(400, f"Unknown commit operation {key!r}")

    # ------------------------------------------------------------------ reading: info, tree, refs, commits, files

    def _repo_info(self, request: _Request) -> _Reply:
        blobs = request.query.get("blobs", ["false"])[0].lower() in ("1", "true")
        with self._lock:
            repo = self._readable_repo(request)
            commit = self._resolve_revision(repo, request.params.get("rev", "main"))
            siblings = []
            for path, blob in sorted(commit.files.items()):
                sibling: dict[str, Any] = {"rfilename": path}
                if blobs:
                    sibling.update(size=len(blob.data), blobId=blob.oid)
                    if blob.lfs:
                        sibling["lfs"] = {
                            "size": len(blob.data),
                            "sha256": blob.sha256,
                            "pointerSize": len(blob.pointer),
                        }
                siblings.append(sibling)
            author = repo.repo_id.split("/")[0]
            info = {"_id": repo.repo_id, "id": repo.repo_id, "modelId": repo.repo_id, "author": author,
                    "sha": commit.sha, "lastModified": commit.date, "createdAt": repo.created_at,
                    "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
                    "tags": [], "siblings": siblings, "spaces": []}  # fmt: skip
        return _json(info)

    def _tree(self, request: _Request) -> _Reply:
        recursive = request.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        with self._lock:
            repo = self._readable_repo(request)
            commit = self._resolve_revision(repo, request.params["rev"])
            base = request.params.get("path", "").strip("/")
            prefix = f"{base}/" if base else ""
            if base and not any(path.startswith(prefix) for path in commit.files):
                headers = {"X-Repo-Commit": commit.sha}
                raise FakeHubError(404, f"Path {base} not found", code="EntryNotFound", headers=headers)
            entries: dict[str, dict[str, Any]] = {}
            for path, blob in sorted(commit.files.items()):
                if not path.startswith(prefix):
                    continue
                parts = path[len(prefix) :].split("/")
                for depth in range(1, len(parts)):  # the folders on the way, as the Hub lists them
                    folder = prefix + "/".join(parts[:depth])
                    if recursive or depth == 1:
                        entries.setdefault(folder, {"type": "directory", "oid": git_oid(folder.encode()), "size": 0,
                                                    "path": folder})  # fmt: skip
                if recursive or len(parts) == 1:
                    entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
                    if blob.lfs:
                        entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
                    entries[path] = entry
        return _json(list(entries.values()))

    def _refs(self, request: _Request) -> _Reply:
        with self._lock:
            repo = self._readable_repo(request)
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha} for name, sha in repo.branches.items()
            ]
        return _json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def _commits(self, request: _Request) -> _Reply:
        with self._lock:
            repo = self._readable_repo(request)
            self._resolve_revision(repo, request.params["rev"])
            history = self.history(repo.repo_id, request.params["rev"])
        return _json(
            [
                {"id": c.sha, "title": c.title, "message": c.message, "authors": [{"user": self.user}], "date": c.date}
                for c in history
            ]
        )

    def _resolve(self, request: _Request) -> _Reply:
        """File download, HEAD and GET. Served directly (no CDN redirect) with the headers hf_hub_download requires."""
        with self._lock:
            repo = self._readable_repo(request)
            commit = self._resolve_revision(repo, request.params["rev"])
            blob = commit.files.get(request.params["path"])
        if blob is None:
            headers = {"X-Repo-Commit": commit.sha}
            raise FakeHubError(404, "Entry not found", code="EntryNotFound", headers=headers)
        headers = {
            "X-Repo-Commit": commit.sha,  # required: hf_hub_download raises without it
            "ETag": f'"{blob.etag}"',  # required: names the blob in the cache
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if blob.lfs:  # the Hub's LFS answers name the content, not the pointer
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        data, status = blob.data, 200
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", "") or "")
        if ranged and request.method == "GET":  # resumed downloads
            start, end = int(ranged.group(1)), int(ranged.group(2) or len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
            data, status = data[start : end + 1], 206
        return _Reply(status, data, headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer carries Content-Length
    timeout = 60  # drop idle keep-alive connections eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes: without this, 40 ms per answer

    def do_GET(self) -> None:
        self.server.hub._handle(self)  # type: ignore[attr-defined]

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # streamed file uploads may be chunked
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, reply: _Reply, *, head_only: bool) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean; hub.requests has it all
        pass


# ------------------------------------------------------------------------------------------------- client setup


def patch_client(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the real huggingface_hub client at `hub` for one test, and nowhere else.

    - offline mode off: tests/conftest.py sets HF_HUB_OFFLINE=1, which huggingface_hub reads into
      `constants.HF_HUB_OFFLINE` at import; while it is true, every request raises OfflineModeIsEnabled.
    - Xet off (`constants.HF_HUB_DISABLE_XET`): with hf_xet installed the client uploads through Xet without asking
      the server; the fake only speaks LFS "basic".
    - telemetry off: building the user agent would otherwise fetch {ENDPOINT}/api/agent-harnesses.
    - `constants.ENDPOINT` and the resolve-URL template point at the fake, so code that passes no `endpoint=`
      (transformers' from_pretrained("user/repo"), for one) reaches the fake, never huggingface.co.
    - no token from the developer's machine: HF_TOKEN unset, token files under tmp_path; the cache too.
    - no waits between the client's retries of 5xx (http_backoff sleeps 1+2+4+8+8 s), so failure tests stay fast.
    The environment variables are set too, for code that reads them (and for subprocesses).
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    patches: dict[str, Any] = {
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "ENDPOINT": hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_TOKEN_PATH": str(tmp_path / "hf-home" / "token"),
        "HF_STORED_TOKENS_PATH": str(tmp_path / "hf-home" / "stored_tokens"),
        "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    backoffs: list[Callable[..., Any]] = [_http.http_backoff, _http.http_stream_backoff]
    for function in backoffs:
        defaults = getattr(getattr(function, "__wrapped__", function), "__kwdefaults__", None)
        if defaults and "base_wait_time" in defaults:
            monkeypatch.setitem(defaults, "base_wait_time", 0)
            monkeypatch.setitem(defaults, "max_wait_time", 0)


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """A running FakeHub (token `fake_hub.token`, user "fake-user") with the huggingface_hub client pointed at it."""
    with FakeHub() as hub:
        patch_client(hub, monkeypatch, tmp_path_factory.mktemp("fakehub"))
        yield hub
