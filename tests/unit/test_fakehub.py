"""The FakeHub (tests/fakehub.py) against the real huggingface_hub client: push, branch, reload, auth, failures."""

from __future__ import annotations

import base64
import json
import random
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.fakehub import DEFAULT_GITATTRIBUTES, FakeHub

REPO = "fake-user/tiny-model"
# huggingface_hub's LFS PUT passes a file object as `data=`, which httpx2 deprecates: the client's business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """What a push uploads: a binary weights file (LFS) and small text files (regular), README with metadata."""
    folder = tmp_path / "model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(random.Random(0).randbytes(300_000))
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    (folder / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags: [nlp-transfer]\n---\n# tiny\n")
    return folder


def local_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def push(api: HfApi, folder: Path, repo_id: str = REPO, revision: str | None = None) -> str:
    """What `nlp-transfer push` will do: create the repo, then one commit of every file, by local path."""
    api.create_repo(repo_id, private=True, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    operations = [CommitOperationAdd(path, path_or_fileobj=str(folder / path)) for path in sorted(local_files(folder))]
    return api.create_commit(repo_id, operations=operations, commit_message="push", revision=revision).oid


def pushed(hub: FakeHub, repo_id: str = REPO, revision: str = "main") -> dict[str, bytes]:
    """The repo's files, less the .gitattributes the Hub puts in every new repo."""
    files = hub.files(repo_id, revision)
    assert files.pop(".gitattributes") == DEFAULT_GITATTRIBUTES.encode()
    return files


def test_push_uploads_every_file_byte_for_byte_binary_through_lfs(fake_hub: FakeHub, model_folder: Path) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)

    oid = push(api, model_folder)

    assert pushed(fake_hub) == local_files(model_folder)
    assert oid == fake_hub.head(REPO)
    assert fake_hub.lfs_paths(REPO) == {"model.safetensors"}
    assert fake_hub.repos[REPO].private
    # The LFS "basic" path, not Xet: batch, one PUT to the storage URL, verify, then the commit.
    steps = fake_hub.steps()
    assert steps == ["create-repo", "validate-yaml", "preupload", "lfs-batch", "lfs-upload", "lfs-verify", "commit"]
    for request in fake_hub.requests:  # the token on every Hub call; the storage PUT carries none, like S3
        expected = None if request.step == "lfs-upload" else f"Bearer {fake_hub.token}"
        assert request.authorization == expected, request
    assert all(request.status == 200 for request in fake_hub.requests)
    assert fake_hub.internal_errors == []


def test_several_lfs_files_upload_in_parallel(fake_hub: FakeHub, tmp_path: Path) -> None:
    shards = {f"model-0000{i}-of-00003.safetensors": random.Random(i).randbytes(50_000) for i in range(1, 4)}
    for name, data in shards.items():
        (tmp_path / name).write_bytes(data)
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)

    push(api, tmp_path)

    assert pushed(fake_hub) == shards
    assert fake_hub.lfs_paths(REPO) == set(shards)
    assert fake_hub.steps().count("lfs-upload") == 3


def test_pushing_again_is_idempotent(fake_hub: FakeHub, model_folder: Path) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
    first = push(api, model_folder)
    del fake_hub.requests[:]

    second = push(api, model_folder)  # create_repo answers 409 (exist_ok), preupload reports the same oids

    assert second == first
    assert "commit" not in fake_hub.steps() and "lfs-upload" not in fake_hub.steps()
    assert len(fake_hub.history(REPO)) == 2  # the initial commit and the push


def test_commit_on_a_branch_leaves_main_alone(fake_hub: FakeHub, model_folder: Path, tmp_path: Path) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
    push(api, model_folder)
    main = fake_hub.files(REPO)
    (model_folder / "config.json").write_text('{"changed": true}')

    oid = push(api, model_folder, revision="epoch-1")
    api.create_branch(REPO, branch="epoch-1", exist_ok=True)  # 409, swallowed

    assert fake_hub.files(REPO) == main
    assert pushed(fake_hub, revision="epoch-1") == local_files(model_folder)
    assert fake_hub.head(REPO, "epoch-1") == oid
    assert [branch.name for branch in api.list_repo_refs(REPO).branches] == ["main", "epoch-1"]
    with pytest.raises(HfHubHTTPError) as error:
        api.create_branch(REPO, branch="epoch-1")
    assert error.value.response.status_code == 409


def test_snapshot_download_round_trip(fake_hub: FakeHub, model_folder: Path, tmp_path: Path) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
    push(api, model_folder)
    (model_folder / "config.json").write_text('{"branch": true}')
    branch_oid = push(api, model_folder, revision="v2")

    for revision in ("main", "v2"):
        folder = snapshot_download(
            REPO, revision=revision, endpoint=fake_hub.url, cache_dir=tmp_path / "cache", token=fake_hub.token
        )
        downloaded = local_files(Path(folder))
        assert downloaded.pop(".gitattributes") == DEFAULT_GITATTRIBUTES.encode()
        assert downloaded == pushed(fake_hub, revision=revision)
    assert Path(folder).name == branch_oid  # the snapshot folder is named by the commit sha (X-Repo-Commit)

    single = hf_hub_download(
        REPO, "model.safetensors", revision="v2", endpoint=fake_hub.url, cache_dir=tmp_path / "c2", token=fake_hub.token
    )
    assert Path(single).read_bytes() == (model_folder / "model.safetensors").read_bytes()
    assert "xet-token" not in fake_hub.steps() and "unhandled" not in fake_hub.steps()


def test_the_client_default_endpoint_points_at_the_fake(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Code that passes no endpoint= (transformers, for one) reaches the fake, never huggingface.co."""
    fake_hub.seed(REPO, {"config.json": b"{}"})

    path = hf_hub_download(REPO, "config.json", cache_dir=tmp_path)

    assert Path(path).read_bytes() == b"{}"
    assert HfApi().model_info(REPO).sha == fake_hub.head(REPO)
    assert HfApi(token=fake_hub.token).whoami()["name"] == "fake-user"


def test_private_repo_needs_the_token_to_read(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.seed(REPO, {"config.json": b"{}"}, private=True)

    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(REPO, endpoint=fake_hub.url, cache_dir=tmp_path, token=False)


@pytest.mark.parametrize("token", ["hf_wrong", False], ids=["wrong-token", "no-token"])
def test_a_bad_token_is_refused_with_401(fake_hub: FakeHub, model_folder: Path, token: str | bool) -> None:
    api = HfApi(endpoint=fake_hub.url, token=token)

    with pytest.raises(HfHubHTTPError) as error:
        push(api, model_folder)

    assert error.value.response.status_code == 401
    assert REPO not in fake_hub.repos
    sent = None if token is False else f"Bearer {token}"
    assert fake_hub.requests[0].authorization == sent


@pytest.mark.parametrize("step", ["preupload", "lfs-batch", "lfs-upload", "commit"])
def test_a_server_error_mid_push_changes_nothing(fake_hub: FakeHub, model_folder: Path, step: str) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
    api.create_repo(REPO, private=True)
    before = fake_hub.files(REPO)
    fake_hub.fail_on = step

    with pytest.raises(Exception) as error:  # HfHubHTTPError, or a RuntimeError wrapping it (lfs-upload)
        push(api, model_folder)

    cause = error.value if isinstance(error.value, HfHubHTTPError) else error.value.__cause__
    assert isinstance(cause, HfHubHTTPError) and cause.response.status_code == 500
    assert fake_hub.files(REPO) == before
    assert len(fake_hub.history(REPO)) == 1
    # The client retries 500s, without waiting under the fixture, except on the commit.
    assert fake_hub.steps().count(step) == (1 if step == "commit" else 6)


def test_a_failure_that_clears_is_retried_through(fake_hub: FakeHub, model_folder: Path) -> None:
    api = HfApi(endpoint=fake_hub.url, token=fake_hub.token)
    fake_hub.fail_on, fake_hub.fail_times = "lfs-upload", 2

    push(api, model_folder)

    assert pushed(fake_hub) == local_files(model_folder)
    assert fake_hub.steps().count("lfs-upload") == 3


def test_fail_on_rejects_unknown_steps(fake_hub: FakeHub) -> None:
    with pytest.raises(ValueError, match="unknown step"):
        fake_hub.fail_on = "upload"


def post_commit(hub: FakeHub, lines: list[dict]) -> int:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    request = urllib.request.Request(
        f"{hub.url}/api/models/{REPO}/commit/main",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/x-ndjson"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_commit_naming_an_lfs_object_never_uploaded_is_rejected(fake_hub: FakeHub) -> None:
    fake_hub.seed(REPO, {"config.json": b"{}"})
    before = fake_hub.head(REPO)
    header = {"key": "header", "value": {"summary": "sneaky", "description": ""}}
    content = base64.b64encode(b"1").decode()
    config = {"key": "file", "value": {"path": "new.json", "encoding": "base64", "content": content}}
    missing = {"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256", "oid": "0" * 64, "size": 3}}

    assert post_commit(fake_hub, [header, config, missing]) == 400
    assert fake_hub.head(REPO) == before
    assert post_commit(fake_hub, [header, config]) == 200
    assert fake_hub.files(REPO)["new.json"] == b"1"
