"""`nlp-transfer cluster` through the CLI on tiny random models: the files it writes, reproducibility, every
encoder source (model folder, full / LoRA / probe run folders), and bad input as one error line.

A random tiny BERT still separates texts built from two disjoint vocabularies (mean pooling keeps token identity);
that held for six different model seeds, so the split is asserted with a little slack rather than exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import invoke, user_error, write_recipe

OUTPUT_FILES = {"assignments.jsonl", "clusters.json", "metrics.json", "summary.md"}


def two_groups() -> list[tuple[str, str]]:
    """24 (text, label) pairs: 12 built from colour words, 12 from animal words."""
    rows = []
    for label, words in (("colour", ["red", "green", "blue", "yellow"]), ("animal", ["dog", "cat", "horse", "cow"])):
        for i in range(12):
            a, b = words[i % 4], words[(i + 1 + i // 4) % 4]
            rows.append((f"{a} {b} {a} {b} {a}", label))
    return rows


@pytest.fixture
def groups_csv(tmp_path: Path) -> Path:
    path = tmp_path / "groups.csv"
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in two_groups()), encoding="utf-8")
    return path


def cluster(model: Path | str, data: Path | str, out: Path, *extra: object) -> dict:
    result = invoke("cluster", model, data, "--output-dir", out, *extra)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES  # no temporary files left behind
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def assignments(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "assignments.jsonl").read_text(encoding="utf-8").splitlines()]


def test_two_obvious_groups_split_and_every_file_is_written(
    tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke(
        "cluster", tiny_models["bert"], groups_csv, "--label", "label", "--examples", "3", "--output-dir", out
    )
    assert result.exit_code == 0, result.output
    assert "k=2, n=24" in result.stdout and "NMI" in result.stdout and str(out) in result.stdout

    rows = assignments(out)
    assert [r["index"] for r in rows] == list(range(24))
    assert [(r["text"], r["label"]) for r in rows] == two_groups()
    by_group = {label: Counter(r["cluster"] for r in rows if r["label"] == label) for label in ("colour", "animal")}
    colour_cluster, colour_count = by_group["colour"].most_common(1)[0]
    animal_cluster, animal_count = by_group["animal"].most_common(1)[0]
    assert colour_cluster != animal_cluster and colour_count >= 11 and animal_count >= 11

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["k"] == 2 and metrics["n"] == 24  # k defaults to the number of distinct labels
    assert metrics["purity"] >= 22 / 24 and metrics["nmi"] > 0.5 and metrics["ari"] > 0.5
    assert 0 < metrics["silhouette"] <= 1 and metrics["inertia"] > 0

    clusters = json.loads((out / "clusters.json").read_text(encoding="utf-8"))
    assert sorted(c["cluster"] for c in clusters) == [0, 1] and sum(c["size"] for c in clusters) == 24
    for c in clusters:
        members = [r for r in rows if r["cluster"] == c["cluster"]]
        distances = [e["distance"] for e in c["examples"]]
        assert len(c["examples"]) == 3 and distances == sorted(distances)
        assert distances[0] == min(r["distance"] for r in members)  # the closest text comes first
        assert sum(c["labels"].values()) == c["size"]
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| cluster | size |" in summary and "NMI" in summary and summary.count("\n| ") >= 3


def test_same_seed_same_clusters(tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path) -> None:
    first = cluster(tiny_models["bert"], groups_csv, tmp_path / "a", "--k", "3", "--max-samples", "20")
    second = cluster(tiny_models["bert"], groups_csv, tmp_path / "b", "--k", "3", "--max-samples", "20")
    assert assignments(tmp_path / "a") == assignments(tmp_path / "b")
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in second.items() if k != "seconds"}
    assert "label" not in assignments(tmp_path / "a")[0] and "nmi" not in first  # no --label: nothing to score


def test_max_samples_takes_a_seeded_subset_in_file_order(
    tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path
) -> None:
    cluster(tiny_models["bert"], groups_csv, tmp_path / "a", "--k", "2", "--max-samples", "10", "--seed", "1")
    cluster(tiny_models["bert"], groups_csv, tmp_path / "b", "--k", "2", "--max-samples", "10", "--seed", "2")
    chosen_a = [r["index"] for r in assignments(tmp_path / "a")]
    chosen_b = [r["index"] for r in assignments(tmp_path / "b")]
    assert len(chosen_a) == 10 and chosen_a == sorted(set(chosen_a)) and chosen_a != chosen_b
    texts = [text for text, _ in two_groups()]
    assert all(r["text"] == texts[r["index"]] for r in assignments(tmp_path / "a"))


@pytest.mark.parametrize("architecture", ["distilbert", "roberta", "gpt2"])
def test_other_architectures(architecture: str, tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path) -> None:
    """DistilBERT takes no token_type_ids; GPT-2 has no pad token (eos is reused)."""
    metrics = cluster(tiny_models[architecture], groups_csv, tmp_path / "out", "--label", "label")
    assert metrics["n"] == 24 and metrics["nmi"] is not None


def test_header_less_tsv_jsonl_and_txt(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    pairs = two_groups()
    tsv = tmp_path / "groups.tsv"
    tsv.write_text("".join(f'"{t}"\t{label}\n' for t, label in pairs), encoding="utf-8")  # bare quotes stay text
    cluster(tiny_models["bert"], tsv, tmp_path / "tsv", "--columns", "text,label", "--label", "label")
    assert assignments(tmp_path / "tsv")[0]["text"] == f'"{pairs[0][0]}"'

    jsonl = tmp_path / "groups.jsonl"
    jsonl.write_text("".join(json.dumps({"sentence": t, "topic": i % 2}) + "\n" for i, (t, _) in enumerate(pairs)))
    metrics = cluster(tiny_models["bert"], jsonl, tmp_path / "jsonl", "--text", "sentence", "--label", "topic")
    assert metrics["k"] == 2 and assignments(tmp_path / "jsonl")[1]["label"] == "1"

    txt = tmp_path / "groups.txt"
    txt.write_text("\n\n".join(t for t, _ in pairs) + "\n", encoding="utf-8")  # blank lines are skipped
    assert cluster(tiny_models["bert"], txt, tmp_path / "txt", "--k", "2")["n"] == 24


def test_default_out_is_under_runs(
    tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("cluster", tiny_models["bert"], groups_csv, "--k", "2")
    assert result.exit_code == 0, result.output
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("cluster-groups-") and {p.name for p in folder.iterdir()} == OUTPUT_FILES


def test_overwrite(tiny_models: dict[str, Path], groups_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cluster(tiny_models["bert"], groups_csv, out, "--k", "2")
    before = (out / "assignments.jsonl").read_bytes()
    user_error(
        invoke("cluster", tiny_models["bert"], groups_csv, "--k", "3", "--output-dir", out),
        f"--output-dir {out}",
        "--overwrite",
    )
    assert (out / "assignments.jsonl").read_bytes() == before
    assert cluster(tiny_models["bert"], groups_csv, out, "--k", "3", "--overwrite")["k"] == 3


@pytest.mark.parametrize(
    "method", [{"name": "full"}, {"name": "lora"}, {"name": "probe", "pooling": "mean"}], ids=["full", "lora", "probe"]
)
def test_a_run_folder_is_an_encoder(
    method: dict, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """The encoder of a trained run: a plain model, a LoRA adapter on its base, a probe's pooled wrapper."""
    recipe = write_recipe(tmp_path / "recipe", tiny_models["bert"], sentiment_csv, method=method)
    trained = invoke("run", recipe, "-o", "train.max_steps=2")
    assert trained.exit_code == 0, trained.output
    run_dir = tmp_path / "recipe" / "run"
    metrics = cluster(run_dir, sentiment_csv, tmp_path / "out", "--label", "label")
    assert metrics["encoder"].startswith(f"run {run_dir} ({method['name']} on ") and metrics["n"] == 96


# ---- bad input: one error line naming the flag or file and the fix, nothing written -------------------------------


@pytest.fixture
def bert(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["bert"]


def test_bad_k(bert: Path, groups_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    user_error(invoke("cluster", bert, groups_csv, "--k", "1", "--output-dir", out), "--k 1", "between 2 and 24")
    user_error(invoke("cluster", bert, groups_csv, "--k", "25", "--output-dir", out), "--k 25", "between 2 and 24")
    user_error(invoke("cluster", bert, groups_csv, "--output-dir", out), "--k is required without --label", "--k 4")
    assert not out.exists()


def test_k_above_the_distinct_texts(bert: Path, tmp_path: Path) -> None:
    data = tmp_path / "same.txt"
    data.write_text("one\ntwo\none\ntwo\none\n", encoding="utf-8")
    user_error(invoke("cluster", bert, data, "--k", "3"), "--k 3", "between 2 and 2", "distinct texts")
    data.write_text("same\nsame\nsame\n", encoding="utf-8")
    user_error(invoke("cluster", bert, data, "--k", "2"), "1 distinct text", "at least 2")


def test_k_from_a_single_label(bert: Path, tmp_path: Path) -> None:
    data = tmp_path / "one_label.csv"
    data.write_text("text,label\na,x\nb,x\nc,x\n", encoding="utf-8")
    user_error(invoke("cluster", bert, data, "--label", "label"), "k = 1", "--label 'label'", "pass --k")


def test_empty_corpus(bert: Path, tmp_path: Path) -> None:
    for name, content in (("empty.txt", "\n\n"), ("header_only.csv", "text,label\n"), ("empty.jsonl", "")):
        data = tmp_path / name
        data.write_text(content, encoding="utf-8")
        user_error(
            invoke("cluster", bert, data, "--k", "2", "--output-dir", tmp_path / "out"), str(data), "a file with rows"
        )
    assert not (tmp_path / "out").exists()


def test_missing_columns_name_the_columns_found(bert: Path, groups_csv: Path) -> None:
    user_error(
        invoke("cluster", bert, groups_csv, "--text", "sentence", "--k", "2"),
        "--text 'sentence' is not a column",
        "columns found: text, label",
    )
    user_error(
        invoke("cluster", bert, groups_csv, "--label", "labl"),
        "--label 'labl' is not a column",
        "did you mean 'label'?",
        "columns found: text, label",
    )


def test_header_less_tsv_without_columns(bert: Path, tmp_path: Path) -> None:
    data = tmp_path / "dev.tsv"
    data.write_text("good news\tWorld\nbad news\tSports\nmore news\tWorld\n", encoding="utf-8")
    user_error(invoke("cluster", bert, data, "--label", "label"), "--text 'text'", "--columns text,label")
    user_error(
        invoke("cluster", bert, data, "--columns", "text", "--k", "2"), "rows have 2 fields", "name all 2 columns"
    )


def test_bad_rows_and_files(bert: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n{"text": "b"}\n', encoding="utf-8")
    user_error(invoke("cluster", bert, jsonl, "--label", "label"), "row 2 has no 'label'")
    user_error(invoke("cluster", bert, jsonl, "--columns", "text,label", "--k", "2"), "--columns", "drop --columns")
    user_error(invoke("cluster", bert, "nope/missing.tsv", "--k", "2"), "'nope/missing.tsv' not found", "data root")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\nna\xefve\n".encode("latin-1"))
    user_error(invoke("cluster", bert, latin, "--k", "2"), "line 1 is not valid utf-8")


def test_bad_encoder(groups_csv: Path, tmp_path: Path) -> None:
    failed = tmp_path / "failed-run"
    failed.mkdir()
    (failed / "run_status.json").write_text('{"state": "failed"}', encoding="utf-8")
    user_error(invoke("cluster", failed, groups_csv, "--k", "2"), "the run is failed, not complete")
    user_error(invoke("cluster", tmp_path / "no-model", groups_csv, "--k", "2"), "not found", "offline")
