"""Data loading: every file format, splits, subsets, label mapping, pairs, and the tokenization cache."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoTokenizer

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import load_data
from nlp_transfer.recipe import ClassificationTask, DataSpec
from nlp_transfer.tasks.classification import Classification

ROWS = [{"text": f"sentence number {i}", "label": "pos" if i % 2 else "neg"} for i in range(20)]


def _load(tmp_path: Path, **spec: object) -> object:
    return load_data(DataSpec.model_validate(spec), label_column="label", seed=0, data_root=None, base_dir=tmp_path)


def _write(tmp_path: Path, fmt: str) -> Path:
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "json":
        path.write_text(json.dumps(ROWS), encoding="utf-8")  # a JSON array of objects
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    elif fmt == "parquet":
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_each_format_loads_the_same_rows(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path, fmt)
    loaded = _load(tmp_path, train=str(path), eval=str(path))
    assert loaded.splits["train"]["text"] == [r["text"] for r in ROWS]  # type: ignore[attr-defined]
    assert loaded.splits["train"]["label"] == [r["label"] for r in ROWS]  # type: ignore[attr-defined]
    assert str(path) in loaded.file_hashes  # type: ignore[attr-defined]


def test_headerless_tsv_with_column_names_and_bare_quotes(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    path.write_text('He said "hello\tWorld\nstocks "rally" again\tBusiness\n', encoding="utf-8")
    loaded = _load(tmp_path, train=str(path), eval=str(path), columns=["text", "label"])
    assert loaded.splits["train"]["text"] == ['He said "hello', 'stocks "rally" again']  # type: ignore[attr-defined]


def test_fewer_column_names_than_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    path.write_text("stocks rally again\tBusiness\nteam wins\tSports\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"rows have 2 fields but data.columns names 1 \(text\); name all 2 columns"):
        _load(tmp_path, train=str(path), eval=str(path), columns=["text"])


def test_plain_text_files_with_one_label_per_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine film\ngreat cast\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_text("dull plot\n", encoding="utf-8")
    files = [{"path": "good.txt", "label": "positive"}, {"path": "bad.txt", "label": "negative"}]
    loaded = _load(tmp_path, train=files, eval=files)
    train = loaded.splits["train"]  # type: ignore[attr-defined]
    assert list(zip(train["text"], train["label"], strict=True)) == [
        ("fine film", "positive"),
        ("great cast", "positive"),
        ("dull plot", "negative"),
    ]


def test_eval_split_is_carved_from_train_with_the_seed(tmp_path: Path) -> None:
    path = _write(tmp_path, "csv")
    first = _load(tmp_path, train=str(path), eval_fraction=0.25)
    second = _load(tmp_path, train=str(path), eval_fraction=0.25)
    assert len(first.splits["eval"]) == 5 and len(first.splits["train"]) == 15  # type: ignore[attr-defined]
    assert first.splits["eval"]["text"] == second.splits["eval"]["text"]  # type: ignore[attr-defined]
    assert not set(first.splits["eval"]["text"]) & set(first.splits["train"]["text"])  # type: ignore[attr-defined]
    assert any("held out" in note for note in first.notes)  # type: ignore[attr-defined]


def test_max_train_samples_is_a_seeded_random_subset(tmp_path: Path) -> None:
    path = _write(tmp_path, "csv")
    loaded = _load(tmp_path, train=str(path), eval=str(path), max_train_samples=6)
    texts = loaded.splits["train"]["text"]  # type: ignore[attr-defined]
    assert len(texts) == 6 and texts != [r["text"] for r in ROWS[:6]]  # random, not the first rows
    assert texts == _load(tmp_path, train=str(path), eval=str(path), max_train_samples=6).splits["train"]["text"]  # type: ignore[attr-defined]


def test_names_resolve_under_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "set").mkdir(parents=True)
    _write(root / "set", "csv")
    loaded = load_data(
        DataSpec(train="set/rows.csv", eval="set/rows.csv"),
        label_column="label",
        seed=0,
        data_root=root,
        base_dir=None,
    )
    assert loaded.sources["train"] == [str(root / "set" / "rows.csv")]


def test_hub_dataset_offline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"hub dataset 'someone/not-cached'.*offline"):
        _load(tmp_path, train="someone/not-cached")


@pytest.fixture
def bert_tokenizer(tiny_models: dict[str, Path]) -> object:
    return AutoTokenizer.from_pretrained(tiny_models["bert"])


def test_string_labels_map_in_declared_order_and_pairs_tokenize_as_pairs(tmp_path: Path, bert_tokenizer) -> None:
    path = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "premise": ["a man sleeps"] * 3,
            "hypothesis": ["a man rests", "a dog barks", "nobody"],
            "gold": ["y", "n", "y"],
        }
    ).to_csv(path, index=False)
    data = _load(tmp_path, train=str(path), eval=str(path))
    task = Classification(
        ClassificationTask(
            name="classification", text="premise", text_pair="hypothesis", label="gold", labels=["n", "y"]
        )
    )
    prepared = task.prepare(data, bert_tokenizer, pad_to_max_length=False)  # type: ignore[arg-type]
    assert prepared.model_kwargs["id2label"] == {0: "n", 1: "y"}
    assert prepared.splits["train"]["labels"] == [1, 0, 1]
    assert 1 in prepared.splits["train"]["token_type_ids"][0]  # the second segment is marked as a pair


def test_int_labels_keep_their_ids_and_get_names(tmp_path: Path, bert_tokenizer) -> None:
    path = tmp_path / "ints.csv"
    pd.DataFrame({"text": ["x", "y", "z"], "label": [1, 0, 1]}).to_csv(path, index=False)
    data = _load(tmp_path, train=str(path), eval=str(path))
    task = Classification(ClassificationTask(name="classification", labels=["negative", "positive"]))
    prepared = task.prepare(data, bert_tokenizer, pad_to_max_length=False)  # type: ignore[arg-type]
    assert prepared.splits["train"]["labels"] == [1, 0, 1]
    assert prepared.model_kwargs["label2id"] == {"negative": 0, "positive": 1}


def test_empty_texts_are_skipped_and_counted(tmp_path: Path, bert_tokenizer) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("text,label\nfine,1\n,0\n   ,1\nbad,0\n", encoding="utf-8")
    data = _load(tmp_path, train=str(path), eval=str(path))
    prepared = Classification(ClassificationTask(name="classification")).prepare(data, bert_tokenizer, False)  # type: ignore[arg-type]
    assert len(prepared.splits["train"]) == 2
    assert any("skipped 2 of 4" in note for note in prepared.notes)


def test_tokenization_is_cached(tmp_path: Path, bert_tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLP_TRANSFER_CACHE", str(tmp_path / "cache"))
    train, evaluation = _write(tmp_path, "csv"), _write(tmp_path, "jsonl")

    def prepare(max_length: int) -> object:
        task = Classification(ClassificationTask(name="classification", max_length=max_length))
        return task.prepare(_load(tmp_path, train=str(train), eval=str(evaluation)), bert_tokenizer, False)  # type: ignore[arg-type]

    first, second = prepare(16), prepare(16)
    assert first.cache_hits == {"train": False, "eval": False}  # type: ignore[attr-defined]
    assert second.cache_hits == {"train": True, "eval": True}  # type: ignore[attr-defined]
    assert first.splits["train"]["input_ids"] == second.splits["train"]["input_ids"]  # type: ignore[attr-defined]
    # A different setting is a different entry; so is different data.
    assert prepare(24).cache_hits == {"train": False, "eval": False}  # type: ignore[attr-defined]
    train.write_text(train.read_text(encoding="utf-8") + "one more row,pos\n", encoding="utf-8")
    assert prepare(16).cache_hits == {"train": False, "eval": True}  # type: ignore[attr-defined]
