"""predict at scale: files read the way evaluate reads them (csv/tsv/jsonl/json/txt, --text/--text-pair/--columns,
--delimiter), sentence-pair models given both texts, output in input order from length-sorted batches, streaming
in windows (constant memory), the multi-process split and merge, and export --quantize int8."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nlp_transfer.use import inference
from nlp_transfer.use.inference import WINDOW_BATCHES, merged, my_share, ordered
from tests.conftest import free_port, invoke, user_error, write_recipe, write_sentiment_csv

REVIEWS = ["great movie 3", "awful acting and a dull, lifeless plot that never ends", "a delight", "hated it 7", "ok"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Path]:
    """A tiny BERT classifier of single texts and one of text pairs (columns premise, hypothesis)."""
    root = tmp_path_factory.mktemp("predict-files")
    write_sentiment_csv(root / "single.csv")
    rows = ["premise,hypothesis,label"]
    for i in range(12):
        rows += [f"a man sleeps {i},nobody is awake,contradiction", f"a man sleeps {i},a man rests,entailment"]
    (root / "pairs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    found = {}
    for name, task in (
        ("single", {}),
        ("pairs", {"text": "premise", "text_pair": "hypothesis"}),
    ):
        recipe = write_recipe(root / name, tiny_models["bert"], root / f"{name}.csv", task=task)
        result = invoke("run", recipe, "-o", "train.max_steps=3")
        assert result.exit_code == 0, result.output
        found[name] = root / name / "run"
    return found


def predicted(*args: object) -> list[dict[str, Any]]:
    result = invoke("predict", *args, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_file_format_gives_each_rows_prediction_in_input_order(models: dict[str, Path], tmp_path: Path) -> None:
    alone = [predicted(models["single"], text)[0] for text in REVIEWS]  # one at a time: no batching at all
    files = {
        "reviews.csv": "review,stars\n" + "".join(f'"{t}",{i}\n' for i, t in enumerate(REVIEWS)),
        "reviews.tsv": "stars\treview\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(REVIEWS)),
        "reviews.jsonl": "".join(json.dumps({"review": t, "id": i}) + "\n" for i, t in enumerate(REVIEWS)),
        "reviews.json": json.dumps([{"review": t} for t in REVIEWS]),
        "semicolons.csv": "review;stars\n" + "".join(f"{t};{i}\n" for i, t in enumerate(REVIEWS)),
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        extra = ["--delimiter", ";"] if name.startswith("semicolons") else []
        rows = predicted(models["single"], "--file", path, "--text", "review", "--batch-size", 2, *extra)
        assert [r["text"] for r in rows] == REVIEWS, name
        for row, single in zip(rows, alone, strict=True):
            assert row["label"] == single["label"]
            assert row["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)
    # A header-less csv with --columns; a plain text file is one text per line (blank lines skipped).
    (tmp_path / "bare.csv").write_text("".join(f'"{t}",1\n' for t in REVIEWS), encoding="utf-8")
    rows = predicted(models["single"], "--file", tmp_path / "bare.csv", "--columns", "text,label")
    assert [r["text"] for r in rows] == REVIEWS
    (tmp_path / "lines.txt").write_text("\n".join(REVIEWS[:2]) + "\n\n" + "\n".join(REVIEWS[2:]) + "\n")
    assert [r["text"] for r in predicted(models["single"], "--file", tmp_path / "lines.txt")] == REVIEWS
    # The column the model was trained on ("text" here) is the default; arguments come first, then the file.
    rows = predicted(models["single"], "first", "--file", tmp_path / "bare.csv", "--columns", "text,label")
    assert [r["text"] for r in rows] == ["first", *REVIEWS]


def test_a_pair_model_gets_both_texts_from_the_command_line_or_a_file(models: dict[str, Path], tmp_path: Path) -> None:
    run = models["pairs"]
    rows = predicted(run, "a man sleeps", "a dog barks", "--text-pair", "nobody is awake", "--text-pair", "a man rests")
    assert [(r["text"], r["text_pair"]) for r in rows] == [
        ("a man sleeps", "nobody is awake"),
        ("a dog barks", "a man rests"),
    ]
    swapped = predicted(run, "nobody is awake", "--text-pair", "a man sleeps")
    assert swapped[0]["probabilities"] != rows[0]["probabilities"]  # the second text is read, in its place
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"premise": "a man sleeps", "hypothesis": "nobody is awake"})
        + "\n"
        + json.dumps({"premise": "a dog barks", "second": "a man rests"})
        + "\n",
        encoding="utf-8",
    )
    user_error(
        invoke("predict", run, "--file", path), f"--file {path} line 2: no value in column 'hypothesis'", "fill it in"
    )
    path.write_text(path.read_text().replace('"second"', '"hypothesis"'), encoding="utf-8")
    from_file = predicted(run, "--file", path)
    for found, given in zip(from_file, rows, strict=True):
        assert found["probabilities"] == pytest.approx(given["probabilities"], abs=1e-5)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("a,b\na man sleeps,nobody is awake\n", encoding="utf-8")
    assert predicted(run, "--file", renamed, "--text", "a", "--text-pair", "b")[0]["text_pair"] == "nobody is awake"

    user_error(
        invoke("predict", run, "a man sleeps"), "classifies text pairs", "--text-pair", "(1 texts, 0 --text-pair)"
    )
    user_error(invoke("predict", run, "x", "--file", path), "not both")
    lines = tmp_path / "lines.txt"
    lines.write_text("a man sleeps\n", encoding="utf-8")
    user_error(
        invoke("predict", run, "--file", lines), "no column 'hypothesis'", "one text per line", "csv, tsv or jsonl"
    )
    user_error(invoke("predict", models["single"], "x", "--text-pair", "y"), "--text-pair is for sentence-pair models")


def test_predictions_keep_the_files_columns_and_write_the_table_the_name_asks_for(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """predict --file X.csv --out Y.csv round-trips the user's columns (id, stars) next to the prediction."""
    import csv

    run = models["single"]
    reviews = tmp_path / "new_reviews.csv"
    reviews.write_text(
        "id,comment,stars\n" + "".join(f'r{i},"{t}",{i % 5}\n' for i, t in enumerate(REVIEWS)), encoding="utf-8"
    )
    alone = [predicted(run, text)[0] for text in REVIEWS]
    for name, delimiter in (("preds.csv", ","), ("preds.tsv", "\t")):
        out = tmp_path / name
        result = invoke("predict", run, "--file", reviews, "--text", "comment", "--out", out, "--precision", "fp32")
        assert result.exit_code == 0, result.output
        with out.open(encoding="utf-8", newline="") as handle:
            table = list(csv.DictReader(handle, delimiter=delimiter))
        assert [(r["id"], r["comment"], r["stars"]) for r in table] == [
            (f"r{i}", t, str(i % 5)) for i, t in enumerate(REVIEWS)
        ]
        assert [r["label"] for r in table] == [r["label"] for r in alone]
        for row, single in zip(table, alone, strict=True):
            for label, probability in single["probabilities"].items():
                assert float(row[f"probabilities.{label}"]) == pytest.approx(probability, abs=1e-5)
    # JSON lines keep them too (values as read); --keep names some, repeated or comma-separated.
    rows = predicted(run, "--file", reviews, "--text", "comment")
    assert [(r["id"], r["stars"]) for r in rows] == [(f"r{i}", str(i % 5)) for i in range(len(REVIEWS))]
    for keep in (["--keep", "id"], ["--keep", "id,stars"], ["--keep", "id", "--keep", "stars"]):
        rows = predicted(run, "--file", reviews, "--text", "comment", *keep)
        kept = [key for key in rows[0] if key in {"id", "comment", "stars"}]
        assert kept == ",".join(keep[1::2]).split(","), keep
        assert [r["id"] for r in rows] == [f"r{i}" for i in range(len(REVIEWS))]
    # A column named like a prediction field (a labelled file) is kept as <name>_input; the text column read as
    # the text is written once.
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"text": t, "label": "gold"}) + "\n" for t in REVIEWS), encoding="utf-8")
    rows = predicted(run, "--file", labelled)
    assert list(rows[0])[:2] == ["text", "label_input"] and rows[0]["label_input"] == "gold"
    assert [r["text"] for r in rows] == REVIEWS and {r["label"] for r in rows} <= {"0", "1", "negative", "positive"}
    user_error(
        invoke("predict", run, "--file", reviews, "--text", "comment", "--keep", "stras"),
        "--keep stras",
        "did you mean 'stars'",
    )
    user_error(invoke("predict", run, "good", "--keep", "id"), "predict --keep", "give a --file")
    user_error(invoke("predict", run, "good", "--revision", "main"), "--revision main", "is a local folder")


def test_bad_files_are_one_line_errors_and_leave_no_output(models: dict[str, Path], tmp_path: Path) -> None:
    run, out = models["single"], tmp_path / "out.jsonl"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\ngood,1\nfine,1,extra\n", encoding="utf-8")
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("review;stars\ngood;1\n", encoding="utf-8")
    not_objects = tmp_path / "list.jsonl"
    not_objects.write_text('{"text": "good"}\n[1, 2]\n', encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    cases = {
        (ragged,): f"--file {ragged} line 3: 3 fields, but the header row names 2",
        (semicolons,): "no column 'text'",
        (semicolons, "--text", "review"): "no column 'review'",
        (not_objects,): f"--file {not_objects} line 2: expected a JSON object",
        (not_objects, "--delimiter", ";"): "--delimiter is for csv/tsv files",
        (not_objects, "--columns", "a,b"): "--columns names the columns of a header-less csv/tsv",
        (ragged, "--delimiter", "ab"): "one character separates the fields",
        (empty,): f"--file {empty} has no rows",
        (tmp_path,): "is a folder",
        (tmp_path / "missing.csv",): "not found",
    }
    for args, message in cases.items():
        user_error(invoke("predict", run, "--file", *args, "--out", out), message)
        assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))
    user_error(invoke("predict", run, "--text", "review", "some text"), "--text names the text column of a --file")


def test_inputs_stream_in_windows_and_batches_are_sorted_by_length() -> None:
    pulled, batches = [], []

    def source() -> Any:
        for index in range(5 * 2 * WINDOW_BATCHES + 3):  # five full windows of batch 2, and 3 more
            pulled.append(index)
            yield "x" * (index % 7)

    def run(batch: list[str]) -> list[int]:
        batches.append([len(text) for text in batch])
        return [len(text) for text in batch]

    results = ordered(source(), len, 2, run)
    first = next(results)
    assert len(pulled) == 2 * WINDOW_BATCHES  # one window read before the first result: memory holds one window
    rest = list(results)
    assert [first, *rest] == [index % 7 for index in range(5 * 2 * WINDOW_BATCHES + 3)]  # input order
    window = [length for batch in batches[:WINDOW_BATCHES] for length in batch]
    assert window == sorted(window, reverse=True)  # longest first within a window


def test_shards_merge_back_into_input_order(tmp_path: Path) -> None:
    window, world = 3, 3
    for total in (17, 18):  # a short last window, and none (the turn after the last full window is empty)
        items = list(range(total))
        files = []
        for rank in range(world):
            chunks = [items[w * window : (w + 1) * window] for w in range(rank, -(-total // window), world)]
            assert sum(len(chunk) for chunk in chunks) == my_share(total, window, rank, world)
            files.append(tmp_path / f"{total}-rank{rank}.jsonl")
            files[-1].write_text("".join(f"{i}\n" for chunk in chunks for i in chunk))
        assert [int(line) for line in merged(files, window)] == items
    # Each process predicts every world-th window of the stream.
    stream = range(3 * WINDOW_BATCHES + 5)
    mine = list(ordered(stream, lambda _: 0, 1, lambda batch: batch, part=(1, 2)))
    assert mine == list(range(WINDOW_BATCHES, 2 * WINDOW_BATCHES)) + list(range(3 * WINDOW_BATCHES, len(stream)))


@pytest.mark.subprocess
def test_accelerate_launch_splits_the_file_and_merges_in_order(models: dict[str, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    accelerate = Path(sys.executable).parent / "accelerate"
    texts = [f"{'word ' * (i % 9)}{REVIEWS[i % len(REVIEWS)]} {i}" for i in range(300)]
    path = tmp_path / "many.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    single = tmp_path / "single.jsonl"
    result = invoke(
        "predict", models["single"], "--file", path, "--out", single, "--batch-size", 1, "--precision", "fp32"
    )
    assert result.exit_code == 0, result.output
    launched = tmp_path / "launched.csv"  # the merged shards written as the name asks
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--main_process_port", str(free_port())]
    command += ["-m", "nlp_transfer", "predict", str(models["single"]), "--file", str(path), "--out", str(launched)]
    command += ["--batch-size", "1", "--precision", "fp32"]  # windows of 64: five go to one process, five to the other
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import csv

    with launched.open(encoding="utf-8", newline="") as handle:
        ours = list(csv.DictReader(handle))
    theirs = [json.loads(line) for line in single.read_text().splitlines()]
    assert [r["text"] for r in ours] == texts
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    assert not list(tmp_path.glob(".predict-shards-*"))  # the shards are cleaned up
    assert done.stderr.count("wrote 300 predictions") == 1  # the main process reports


def test_export_quantize_int8_checks_the_quantized_model(models: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "int8"
    result = invoke("export", models["single"], "--quantize", "int8", "--out", out)
    assert result.exit_code == 0, result.output
    assert "int8 (per-channel-ffn-float): labels agree on" in result.stdout
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert record["onnx"]["file"] == "model.onnx"  # --quantize implies --onnx: the float model is kept
    int8 = record["onnx_int8"]
    assert int8["file"] == "model.int8.onnx" and (out / "model.int8.onnx").is_file()
    measured = int8["agreement"]  # no data.eval (held out of train): the sample inputs
    assert 0.0 <= measured["label_agreement"] <= 1.0 and measured["n"] == 6 and measured["inputs"] == "sample inputs"
    assert 0.0 <= measured["max_probability_difference"] < 0.5
    import onnx

    ops = {node.op_type for node in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops  # the matrix products run in int8
    user_error(invoke("export", models["single"], "--quantize", "int4", "--out", tmp_path / "x"), "only int8")
    shutil.rmtree(out)


def test_window_size_follows_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inference, "WINDOW_BATCHES", 2)
    assert [len(w) for w in inference.windows(range(7), 3)] == [3, 3, 1]


def test_byte_order_marks_are_read_as_such(models: dict[str, Path], tmp_path: Path) -> None:
    """A UTF-8 byte-order mark does not become part of the first column's name; a UTF-16 file read as utf-8 is
    named as UTF-16 (as the recipe's data readers say), and --encoding utf-16 reads it."""
    marked = tmp_path / "marked.csv"
    marked.write_bytes("text,id\ngreat film,1\nawful film,2\n".encode("utf-8-sig"))
    assert [row["text"] for row in predicted(models["single"], "--file", marked)] == ["great film", "awful film"]
    wide = tmp_path / "wide.csv"
    wide.write_text("text,id\ngreat film,1\n", encoding="utf-16")
    user_error(invoke("predict", models["single"], "--file", wide), "is UTF-16", "--encoding utf-16")
    assert [row["text"] for row in predicted(models["single"], "--file", wide, "--encoding", "utf-16")] == [
        "great film"
    ]
