"""Inference benchmark on this CPU: probe features, predict, evaluate and ONNX (fp32 and int8), before and after.

What it measures (all-MiniLM-L6-v2 fine-tuned for one epoch on --train-samples SST-2 sentences, or --run RUN_DIR)
    probe features  the frozen encoder over --feature-samples SST-2 training sentences, mean pooling, length-sorted
                    batches of 64 (as extract_features runs): fp32 (before) against the precision policy (after:
                    bf16 autocast where the CPU does bf16)
    predict         SST-2 dev (872 sentences) and --predict-samples training sentences, batch 32: before = the old
                    predict loop (batches in input order, fp32), after = nlp-transfer's predictor (length-sorted
                    windows, the precision policy), and after in fp32 (sorting alone)
    evaluate        `nlp-transfer evaluate` on SST-2 dev, end to end: fp32 against the precision policy
    ONNX            export --onnx --quantize int8 of the run; onnxruntime fp32 and int8 against PyTorch on SST-2 dev
                    (length-sorted batches of 32 for all): sentences/s, accuracy, and label agreement with fp32
    streaming       `nlp-transfer predict --file` in a fresh process on 10,000 and --stream-lines lines (a tiny
                    random BERT, so a million lines take minutes): peak resident memory of each

How to run (under the shared lock: it trains MiniLM)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_infer.py [--run RUN_DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_results import write_results
from transformers import AutoTokenizer

from nlp_transfer.core.hardware import Runtime, cpu_bf16
from nlp_transfer.data.assets import default_data_root, resolve_model
from nlp_transfer.recipe import load_recipe
from nlp_transfer.train.pipeline import RunOptions, run
from nlp_transfer.use.evaluate import EvaluateOptions, evaluate_model
from nlp_transfer.use.predict import open_predictor

REPO = Path(__file__).resolve().parents[1]
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def sst2(root: Path, name: str) -> tuple[list[str], list[int]]:
    lines = (root / "sst2" / name).read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.split("\t") for line in lines if line.strip()]
    return [text for _, text in rows], [int(label) for label, _ in rows]


def timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def train_run(root: Path, samples: int, folder: Path) -> Path:
    overrides = [f"data.max_train_samples={samples}", f"output.dir={folder}", "train.eval_strategy='no'"]
    run(load_recipe(REPO / "recipes" / "quickstart.yaml", overrides), RunOptions(data_root=root))
    return folder


def old_predict_logits(model: Any, tokenizer: Any, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """predict before this change: batches in input order, fp32."""
    parts = []
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer(
            texts[start : start + batch_size], truncation=True, max_length=64, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            parts.append(model(**inputs).logits)
    return torch.cat(parts)


def bench_features(run_dir: Path, texts: list[str]) -> dict[str, Any]:
    from nlp_transfer.methods.features import encode

    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    encoder = open_predictor(run_dir, runtime=Runtime.choose("cpu", "fp32")).model.base_model.eval()  # type: ignore[attr-defined]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results = {}
    for name, precision in (("fp32 (before)", "fp32"), ("precision policy (after)", "auto")):
        runtime = Runtime.choose("cpu", precision)

        def work(runtime: Runtime = runtime) -> None:
            with torch.inference_mode(), runtime.precision.autocast():
                for start in range(0, len(order), 64):
                    batch = [texts[i] for i in order[start : start + 64]]
                    inputs = tokenizer(batch, truncation=True, max_length=64, padding=True, return_tensors="pt")
                    encode(encoder, dict(inputs), "mean", -1)

        _, seconds = timed(work)
        results[name] = {"precision": runtime.precision.name, "sentences_per_second": round(len(texts) / seconds, 1)}
    return results


def bench_predict(run_dir: Path, sets: dict[str, tuple[list[str], list[int]]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    plain = open_predictor(run_dir, runtime=Runtime.choose("cpu", "fp32"))
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    for set_name, (texts, labels) in sets.items():
        before, seconds = timed(lambda texts=texts: old_predict_logits(plain.model, tokenizer, texts))  # type: ignore[attr-defined]
        rows = {"before: input order, fp32": (before, seconds)}
        for name, precision in (("after: length-sorted, fp32", "fp32"), ("after: length-sorted, policy", "auto")):
            predictor: Any = open_predictor(run_dir, runtime=Runtime.choose("cpu", precision))
            rows[name] = timed(lambda p=predictor, texts=texts: torch.cat(list(p.logits(texts))))
        gold = np.asarray(labels)
        results[set_name] = {
            name: {
                "sentences_per_second": round(len(texts) / seconds, 1),
                "accuracy": round(float((logits.argmax(-1).numpy() == gold).mean()), 4),
                "labels_as_before": round(float((logits.argmax(-1) == before.argmax(-1)).float().mean()), 4),
            }
            for name, (logits, seconds) in rows.items()
        }
    return results


def bench_evaluate(run_dir: Path, root: Path) -> dict[str, Any]:
    results = {}
    for precision in ("fp32", "auto"):
        options = EvaluateOptions(model=str(run_dir), data=str(root / "sst2" / "dev.tsv"), precision=precision)
        found, seconds = timed(lambda options=options: evaluate_model(options))
        results[precision] = {
            "runtime": found["runtime"],
            "seconds": round(seconds, 2),
            "rows_per_second": round(found["rows"] / seconds, 1),
            "accuracy": found["metrics"]["accuracy"],
            "loss": round(found["metrics"]["loss"], 4),
        }
    return results


def bench_onnx(run_dir: Path, texts: list[str], labels: list[int], workdir: Path) -> dict[str, Any]:
    import onnxruntime

    from nlp_transfer.use.export import ExportOptions, export

    exported, export_seconds = timed(lambda: export(run_dir, ExportOptions(out=workdir / "onnx", quantize="int8")))
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [
        dict(tokenizer([texts[i] for i in order[s : s + 32]], truncation=True, max_length=64, padding=True,
                       return_tensors="np"))
        for s in range(0, len(order), 32)
    ]  # fmt: skip
    results: dict[str, Any] = {"export_seconds": round(export_seconds, 1), "export_record": exported.record}
    outputs = {}
    for name, file in (("onnx fp32", "model.onnx"), ("onnx int8", "model.int8.onnx")):
        session = onnxruntime.InferenceSession(str(workdir / "onnx" / file), providers=["CPUExecutionProvider"])
        wanted = {i.name for i in session.get_inputs()}

        def infer(session: Any = session, wanted: set[str] = wanted) -> np.ndarray:
            return np.concatenate(
                [session.run(["logits"], {k: v for k, v in b.items() if k in wanted})[0] for b in batches]
            )

        logits, seconds = timed(infer)
        outputs[name] = (logits, seconds)
    for precision in ("fp32", "auto"):
        predictor: Any = open_predictor(run_dir, runtime=Runtime.choose("cpu", precision))
        logits, seconds = timed(lambda p=predictor: torch.cat(list(p.logits([texts[i] for i in order]))).numpy())
        outputs[f"pytorch {predictor.runtime.precision.name}"] = (logits, seconds)
    gold = np.asarray(labels)[order]
    reference = outputs["onnx fp32"][0].argmax(-1)
    for name, (logits, seconds) in outputs.items():
        results[name] = {
            "sentences_per_second": round(len(texts) / seconds, 1),
            "accuracy": round(float((logits.argmax(-1) == gold).mean()), 4),
            "label_agreement_with_onnx_fp32": round(float((logits.argmax(-1) == reference).mean()), 4),
        }
    results["bytes"] = {"onnx fp32": (workdir / "onnx" / "model.onnx").stat().st_size}
    results["bytes"]["onnx int8"] = (workdir / "onnx" / "model.int8.onnx").stat().st_size
    return results


def bench_streaming(workdir: Path, lines: int, texts: list[str]) -> dict[str, Any]:
    """Peak RSS of `predict --file` in a fresh process, on a short and a long file (a tiny random BERT)."""
    from transformers import BertConfig, BertForSequenceClassification

    model_dir = resolve_model(MODEL_ID).location
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, num_labels=2)  # fmt: skip
    tiny = workdir / "tiny-run"
    BertForSequenceClassification(config).save_pretrained(tiny)
    tokenizer.save_pretrained(tiny)
    recipe = {"model": {"name": MODEL_ID}, "task": {"name": "classification", "text": "text", "label": "label",
              "max_length": 64}, "data": {"train": "unused.csv"}}  # fmt: skip
    import yaml

    (tiny / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    results = {}
    for count in (10_000, lines):
        path = workdir / f"lines-{count}.txt"
        with path.open("w", encoding="utf-8") as handle:
            for i in range(count):
                handle.write(texts[i % len(texts)] + "\n")
        out = workdir / f"out-{count}.jsonl"
        command = [sys.executable, "-m", "nlp_transfer", "predict", str(tiny), "--file", str(path), "--out", str(out)]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (kB on Linux)
        seconds = time.perf_counter() - started
        if status != 0:
            sys.exit(f"error: predict --file failed on {count} lines (status {status})")
        with out.open(encoding="utf-8") as handle:
            written = sum(1 for _ in handle)
        results[f"{count} lines"] = {
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "seconds": round(seconds, 1),
            "lines_per_second": round(count / seconds, 1),
            "predictions_written": written,
        }
        path.unlink()
        out.unlink()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--run", type=Path, default=None, help="a trained SST-2 run folder (default: train one)")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--feature-samples", type=int, default=5000)
    parser.add_argument("--predict-samples", type=int, default=5000)
    parser.add_argument("--stream-lines", type=int, default=1_000_000)
    parser.add_argument("--only", default="features,predict,evaluate,onnx,streaming")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    root = default_data_root()
    if root is None:
        sys.exit("error: no data root (../shared/data or $NLP_TRANSFER_DATA)")
    only = set(args.only.split(","))
    print(f"CPU bf16: {cpu_bf16() or 'none'}; torch threads {torch.get_num_threads()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    report: dict[str, Any] = {"cpu_bf16": cpu_bf16(), "threads": torch.get_num_threads()}
    try:
        run_dir = args.run or train_run(root, args.train_samples, workdir / "run")
        dev = sst2(root, "dev.tsv")
        train_texts, train_labels = sst2(root, "train.tsv")
        unseen = (train_texts[-args.predict_samples :], train_labels[-args.predict_samples :])  # the file's tail
        steps = {
            "features": lambda: bench_features(run_dir, train_texts[: args.feature_samples]),
            "predict": lambda: bench_predict(run_dir, {"sst2 dev": dev, f"{args.predict_samples} train": unseen}),
            "evaluate": lambda: bench_evaluate(run_dir, root),
            "onnx": lambda: bench_onnx(run_dir, *dev, workdir),
            "streaming": lambda: bench_streaming(workdir, args.stream_lines, train_texts),
        }
        for name, step in steps.items():
            if name in only:
                report[name] = step()
                print(f"\n== {name}\n{json.dumps(report[name], indent=2)}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    rows = [
        {"step": name, **json.loads(json.dumps(found, default=str))}
        for name, found in report.items()
        if isinstance(found, dict)
    ]
    notes = f"CPU bf16: {report['cpu_bf16'] or 'none'}; {report['threads']} torch threads"
    print(f"wrote {write_results('bench_infer', rows, notes=notes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
