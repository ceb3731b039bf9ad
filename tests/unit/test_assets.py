"""Model and data references: local folders, offline mirrors, the Hub; each failure says which and where."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import errors as hub_errors

from nlp_transfer.core.errors import UserError
from nlp_transfer.data import assets
from nlp_transfer.data.assets import resolve_data_file, resolve_model


def test_installed_mirror_resolves_the_hub_id_offline(minilm: Path) -> None:
    asset = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert asset.source == "mirror" and Path(asset.location) == minilm
    assert asset.hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_local_folder_wins_and_knows_its_hub_id_when_it_is_a_mirror(minilm: Path, tiny_models: dict) -> None:
    assert resolve_model(str(tiny_models["bert"])).source == "local"
    assert resolve_model(str(tiny_models["bert"])).hub_id is None
    assert resolve_model(str(minilm)).hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_folder_without_config_is_named(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    with pytest.raises(UserError, match=r"has no config\.json"):
        resolve_model(str(tmp_path / "weights"))


def _hub_error(kind: type[Exception]) -> Exception:
    error = kind.__new__(kind)
    Exception.__init__(error, "simulated")
    return error


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (hub_errors.RepositoryNotFoundError, "not found on the Hub"),
        (hub_errors.GatedRepoError, "gated"),
        (hub_errors.RevisionNotFoundError, "revision"),
        (hub_errors.LocalEntryNotFoundError, "could not be reached"),
        (hub_errors.EntryNotFoundError, "has no config.json"),
    ],
)
def test_online_failures_say_which_one(monkeypatch: pytest.MonkeyPatch, error: type[Exception], says: str) -> None:
    """Online (HF_HUB_OFFLINE unset), a hub id is checked once up front; huggingface_hub is stubbed, no network."""
    import huggingface_hub

    def fails(*args: object, **kwargs: object) -> None:
        raise _hub_error(error)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fails)
    monkeypatch.setattr(assets, "_hub_cache_snapshot", lambda repo_id, revision: None)
    with pytest.raises(UserError, match=says):
        resolve_model("someone/some-model", revision="v1")


def test_data_reference_without_extension_is_a_hub_dataset_and_with_one_a_missing_file(tmp_path: Path) -> None:
    assert resolve_data_file("someone/dataset", data_root=tmp_path).source == "hub"
    with pytest.raises(UserError, match=r"data: data file 'missing/train.csv' not found: looked at .*data root"):
        resolve_data_file("missing/train.csv", data_root=tmp_path)
