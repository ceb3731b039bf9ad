"""export --quantize int8 (issue 27): the quantization schemes and what each keeps in float, the agreement with the
float model measured on the run's eval file (or --agreement-file) and recorded in export.json and the card, the
card's onnxruntime snippet run as written, and bad options refused before anything is exported."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Any]:
    """A tiny BERT classifier trained with an eval file, and its int8 export (default scheme)."""
    root = tmp_path_factory.mktemp("int8")
    write_sentiment_csv(root / "train.csv")
    eval_rows = [
        "text,label",
        *[
            f"review number {i} was {'great' if i % 2 else 'awful'},{'positive' if i % 2 else 'negative'}"
            for i in range(23)
        ],
    ]
    (root / "eval.csv").write_text("\n".join(eval_rows) + "\n", encoding="utf-8")
    recipe = write_recipe(root / "r", tiny_models["bert"], root / "train.csv", data={"eval": str(root / "eval.csv")})
    result = invoke("run", recipe, "-o", "train.max_steps=3")
    assert result.exit_code == 0, result.output
    out = root / "export"
    done = invoke("export", root / "r" / "run", "--quantize", "int8", "--out", out)
    assert done.exit_code == 0, done.output
    return {"run": root / "r" / "run", "eval": root / "eval.csv", "export": out, "stdout": done.stdout}


def predicted(model: Path, data: Path, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / f"{model.name}.jsonl"
    result = invoke("predict", model, "--file", data, "--out", out)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_agreement_is_measured_on_the_runs_eval_file(exported: dict[str, Any], tmp_path: Path) -> None:
    record = json.loads((exported["export"] / "export.json").read_text(encoding="utf-8"))["onnx_int8"]
    assert record["scheme"] == "per-channel-ffn-float" and "feed-forward output" in record["quantization"]
    measured = record["agreement"]
    assert measured["inputs"] == str(exported["eval"]) and measured["n"] == 23
    # The same numbers from predict --file on each ONNX file: the export measured what predict gives.
    floats = predicted(exported["export"] / "model.onnx", exported["eval"], tmp_path)
    int8s = predicted(exported["export"] / "model.int8.onnx", exported["eval"], tmp_path)
    same = sum(f["label"] == q["label"] for f, q in zip(floats, int8s, strict=True))
    assert measured["label_agreement"] == pytest.approx(same / 23, abs=1e-6)
    largest = max(
        abs(f["probabilities"][name] - q["probabilities"][name])
        for f, q in zip(floats, int8s, strict=True)
        for name in f["probabilities"]
    )
    assert measured["max_probability_difference"] == pytest.approx(largest, abs=1e-5)
    assert f"labels agree on {measured['label_agreement']:.2%}" in exported["stdout"]


def test_the_card_states_the_agreement_and_its_onnxruntime_snippet_runs(exported: dict[str, Any]) -> None:
    card = (exported["export"] / "README.md").read_text(encoding="utf-8")
    measured = json.loads((exported["export"] / "export.json").read_text(encoding="utf-8"))["onnx_int8"]["agreement"]
    assert "Measured at export on 23 inputs of `eval.csv`: its predictions equal the float model's on " in card
    assert f"{100 * measured['label_agreement']:.2f}%" in card
    snippet = card.split("With onnxruntime", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace("path/to/this/folder", str(exported["export"]))
    scope: dict[str, Any] = {}
    exec(compile(snippet, "card", "exec"), scope)  # the card's code, as a user would paste it
    (row,) = predicted(
        exported["export"] / "model.int8.onnx", _one_text_file(card, exported["export"]), exported["export"]
    )
    labels = json.loads((exported["export"] / "config.json").read_text(encoding="utf-8"))["id2label"]
    assert labels[str(int(scope["logits"].argmax(-1)[0]))] == row["label"]


def _one_text_file(card: str, folder: Path) -> Path:
    """The snippet's example text as a one-row csv (to predict it with nlp-transfer)."""
    text = json.loads(re.search(r"tokenizer\(\[(\".*?\")\]", card).group(1))  # type: ignore[union-attr]
    path = folder.parent / "one.csv"
    path.write_text("text\n" + json.dumps(text) + "\n", encoding="utf-8")
    return path


def test_each_scheme_keeps_what_it_says_in_float(exported: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    from nlp_transfer.use.quantize import SCHEMES, ffn_output_nodes, quantize_file

    source = tmp_path / "model.onnx"
    shutil.copy(exported["export"] / "model.onnx", source)
    shutil.copy(exported["export"] / "config.json", tmp_path / "config.json")
    ffn = ffn_output_nodes(source)
    float_graph = {node.name: node for node in onnx.load(str(source)).graph.node}
    matmuls = [name for name in ffn if float_graph[name].op_type == "MatMul"]
    assert len(matmuls) == 2  # the tiny BERT's two blocks, one feed-forward output projection each
    assert all("output.dense" in str(float_graph[name].metadata_props) for name in matmuls)
    for name in SCHEMES:
        target = tmp_path / f"{name}.onnx"
        record = quantize_file(source, target, name)
        graph = {node.name: node.op_type for node in onnx.load(str(target)).graph.node}
        kept = [m for m in matmuls if graph.get(m) == "MatMul"]  # still a float MatMul under its own name
        if SCHEMES[name].ffn_output_in_float:
            assert kept == matmuls and record["nodes_in_float"] == len(ffn)
        else:
            assert kept == [] and record["nodes_in_float"] == 0
        assert "MatMulInteger" in graph.values() or "DynamicQuantizeMatMul" in graph.values()


def test_agreement_file_and_scheme_options(exported: dict[str, Any], tmp_path: Path) -> None:
    given = tmp_path / "mine.jsonl"
    given.write_text("".join(json.dumps({"text": f"text {i}", "other": i}) + "\n" for i in range(7)), encoding="utf-8")
    out = tmp_path / "export"
    result = invoke(
        "export",
        exported["run"],
        "--quantize",
        "int8",
        "--int8-scheme",
        "dynamic",
        "--agreement-file",
        given,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))["onnx_int8"]
    assert record["scheme"] == "dynamic" and record["nodes_in_float"] == 0
    assert record["agreement"]["inputs"] == str(given) and record["agreement"]["n"] == 7
    assert record["agreement"]["chosen_from"] == "--agreement-file"
    assert "int8 (dynamic): labels agree on" in result.stdout and "on 7 inputs of mine.jsonl" in result.stdout


def test_bad_int8_options_are_refused_before_anything_is_written(exported: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "never"
    run = exported["run"]
    user_error(invoke("export", run, "--quantize", "int8", "--int8-scheme", "int4", "--out", out), "--int8-scheme int4")
    user_error(invoke("export", run, "--onnx", "--agreement-file", exported["eval"], "--out", out), "--quantize int8")
    user_error(
        invoke("export", run, "--quantize", "int8", "--agreement-file", tmp_path / "missing.csv", "--out", out),
        "--agreement-file",
        "not found",
    )
    empty = tmp_path / "wrong.csv"
    empty.write_text("review,label\nfine,1\n", encoding="utf-8")
    user_error(invoke("export", run, "--quantize", "int8", "--agreement-file", empty, "--out", out), "text")
    assert not out.exists() and not list(tmp_path.glob(".never.*"))  # no export, no staging folder left
