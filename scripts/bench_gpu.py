"""GPU training benchmark: BERT-base fine-tuned on SST-2 sentences by nlp-transfer and by plain Trainer scripts.

What it measures
    BERT-base (12 layers, hidden 768, 110M parameters) is built from its config with random weights (speed does not
    depend on the weights) and all-MiniLM-L6-v2's uncased WordPiece vocabulary, which is BERT's. Each way trains it
    for one epoch on the same SST-2 training sentences (1 epoch, lr 5e-5, --batch-size, max_length 128):

    nlp-transfer        the pipeline with its defaults: dynamic padding, length-sorted sub-batches, train.precision auto
                        (bf16 autocast on Ampere and newer, fp16 before)
    nlp-transfer-fp32   the same with train.precision fp32 (the bf16 target is against this)
    padded-fp32         a plain Trainer as the transformers example runs it: every sentence padded to 128, fp32
    dynamic-bf16        a plain Trainer with dynamic padding (random batches) and bf16
    (--compile adds nlp-transfer-compile: train.compile true)

    For each it prints samples/s, real tokens/s (padding not counted) and model FLOPs utilisation,
    MFU = 6 x parameters x real tokens/s / the device's peak dense bf16 FLOP/s (PEAK_TFLOPS, or --peak-tflops),
    and the targets: nlp-transfer at least 2.5x nlp-transfer-fp32's samples/s, at least 35% MFU, and at least 5x
    padded-fp32's samples/s.

How to run
    On a GPU machine (scripts/device_check.sh runs it with the files it needs):
        python scripts/bench_gpu.py --tokenizer DIR --data-root DIR [--train-samples 20000] [--json out.json]
    DIR for --tokenizer holds MiniLM's tokenizer files; --data-root holds sst2/train.tsv. Without CUDA it refuses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_results import write_results

# bench_train.py, beside this file: the same SST-2 reading and subsetting as the CPU benchmark.
from bench_train import read_tsv, subset, usable  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.yaml"
TEXT, LABEL = "sentence", "label"
# Peak dense bf16 tensor-core FLOP/s (no sparsity), from the vendors' data sheets; matched on the device name.
PEAK_TFLOPS = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "H100": 989.4,
               "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10": 125.0, "V100": 125.0, "T4": 65.0}  # fmt: skip


def peak_flops(name: str, given: float | None) -> tuple[float, str]:
    if given is not None:
        return given * 1e12, f"{given:g} TFLOP/s (--peak-tflops)"
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value * 1e12, f"{value:g} TFLOP/s ({key} bf16 dense)"
    sys.exit(f"error: no peak FLOP/s known for {name}; pass --peak-tflops")


def build_bert_base(tokenizer_dir: Path, folder: Path, smoke: bool = False) -> int:
    """BERT-base from its config, random weights, MiniLM's (BERT's) WordPiece vocabulary; returns the parameters.
    (--smoke: a 2-layer, 64-wide BERT instead, to check the script itself on a CPU.)"""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
    config = BertConfig(vocab_size=len(tokenizer), num_labels=2, **(size if smoke else {}))  # base by default
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def real_tokens(tokenizer_dir: Path, texts: list[str], max_length: int) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])


def nlp_transfer_way(extra: list[str]) -> Any:
    def train(args: argparse.Namespace, model_dir: Path, workdir: Path) -> tuple[float, float, str]:
        from nlp_transfer.recipe import load_recipe
        from nlp_transfer.train.pipeline import RunOptions, run

        overrides = [
            f"model.name={model_dir}",
            "data.train=sst2/train.tsv",
            "data.eval=sst2/dev.tsv",
            f"data.max_train_samples={args.train_samples}",
            "data.max_eval_samples=256",
            f"task.max_length={args.max_length}",
            "train.epochs=1",
            "train.learning_rate=5e-5",
            f"train.batch_size={args.batch_size}",
            "train.eval_strategy='no'",
            f"output.dir={workdir / 'run'}",
            *extra,
        ]
        result = run(load_recipe(RECIPE, overrides), RunOptions(data_root=args.data_root))
        metrics = result.metrics["train"]
        return float(metrics["train_samples_per_second"]), float(metrics["train_runtime"]), str(metrics["precision"])

    return train


def plain_way(pad: bool, bf16: bool) -> Any:
    def train(args: argparse.Namespace, model_dir: Path, workdir: Path) -> tuple[float, float, str]:
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            DataCollatorWithPadding,
            Trainer,
            TrainingArguments,
            default_data_collator,
        )

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        rows = subset(read_tsv(args.data_root / "sst2" / "train.tsv"), args.train_samples, 42).filter(usable)
        padding = "max_length" if pad else False
        dataset = rows.map(
            lambda b: tokenizer(b[TEXT], padding=padding, max_length=args.max_length, truncation=True),
            batched=True,
            remove_columns=[TEXT],
        )
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
        arguments = TrainingArguments(
            output_dir=str(workdir / "plain"),
            num_train_epochs=1,
            learning_rate=5e-5,
            per_device_train_batch_size=args.batch_size,
            save_strategy="no",
            report_to="none",
            bf16=bf16,
            use_cpu=not torch.cuda.is_available(),  # --smoke only
            logging_steps=50,
        )
        collator = default_data_collator if pad else DataCollatorWithPadding(tokenizer)
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator)
        metrics = trainer.train().metrics
        return float(metrics["train_samples_per_second"]), float(metrics["train_runtime"]), "bf16" if bf16 else "fp32"

    return train


WAYS: dict[str, Any] = {
    "nlp-transfer": nlp_transfer_way([]),
    "nlp-transfer-fp32": nlp_transfer_way(["train.precision=fp32"]),
    "padded-fp32": plain_way(pad=True, bf16=False),
    "dynamic-bf16": plain_way(pad=False, bf16=True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tokenizer", type=Path, required=True, help="folder with MiniLM's tokenizer files")
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding sst2/train.tsv and dev.tsv")
    parser.add_argument("--train-samples", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of: {', '.join(WAYS)}")
    parser.add_argument("--compile", action="store_true", help="also nlp-transfer with train.compile true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak (default: by its name)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="check the script on a CPU: a tiny BERT, 64 sentences")
    args = parser.parse_args(argv)
    if args.smoke:
        args.train_samples, args.batch_size, args.peak_tflops = 64, 16, args.peak_tflops or 1.0
    elif not torch.cuda.is_available():
        sys.exit("error: no CUDA device; this benchmark runs on a GPU (see scripts/device_check.sh)")
    if args.compile:
        WAYS["nlp-transfer-compile"] = nlp_transfer_way(["train.compile=true"])
    ways = [w.strip() for w in args.ways.split(",")] + (["nlp-transfer-compile"] if args.compile else [])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (smoke test)"
    peak, peak_source = peak_flops(device, args.peak_tflops)
    texts = list(subset(read_tsv(args.data_root / "sst2" / "train.tsv"), args.train_samples, 42).filter(usable)[TEXT])
    tokens = real_tokens(args.tokenizer, texts, args.max_length)
    print(f"{device}; peak {peak_source}; {len(texts)} sentences, {tokens} real tokens", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    results = {}
    try:
        parameters = build_bert_base(args.tokenizer, workdir / "bert-base", args.smoke)
        for way in ways:
            started = time.perf_counter()
            speed, runtime, precision = WAYS[way](args, workdir / "bert-base", workdir / way)
            tokens_per_second = tokens / runtime
            results[way] = {
                "precision": precision,
                "samples_per_second": round(speed, 1),
                "train_runtime": round(runtime, 2),
                "real_tokens_per_second": round(tokens_per_second),
                "mfu": round(6 * parameters * tokens_per_second / peak, 4),
                "wall_seconds": round(time.perf_counter() - started, 1),
            }
            print(f"RESULT {way} {json.dumps(results[way])}", flush=True)
            shutil.rmtree(workdir / way, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nBERT-base ({parameters / 1e6:.1f}M parameters), batch {args.batch_size}, {device}")
    print(f"{'way':<22} {'precision':>9} {'samples/s':>10} {'tokens/s':>10} {'MFU':>7}")
    for way, r in results.items():
        print(f"{way:<22} {r['precision']:>9} {r['samples_per_second']:>10.1f} {r['real_tokens_per_second']:>10} "
              f"{100 * r['mfu']:>6.1f}%")  # fmt: skip
    ours = results.get("nlp-transfer")
    checks = {}
    if ours and "nlp-transfer-fp32" in results:
        checks["bf16 vs fp32 samples/s (>= 2.5x)"] = (
            ours["samples_per_second"] / results["nlp-transfer-fp32"]["samples_per_second"]
        )
    if ours:
        checks["MFU (>= 35%)"] = ours["mfu"]
    if ours and "padded-fp32" in results:
        checks["vs padded fp32 plain Trainer (>= 5x)"] = (
            ours["samples_per_second"] / results["padded-fp32"]["samples_per_second"]
        )
    targets = {
        "bf16 vs fp32 samples/s (>= 2.5x)": 2.5,
        "MFU (>= 35%)": 0.35,
        "vs padded fp32 plain Trainer (>= 5x)": 5.0,
    }
    for name, value in checks.items():
        print(f"{name}: {value:.3g} -> {'MET' if value >= targets[name] else 'NOT MET'}")
    if args.json is not None:
        summary = {
            "device": device,
            "peak": peak_source,
            "parameters": parameters,
            "tokens": tokens,
            "results": results,
        }
        args.json.write_text(json.dumps(summary | {"checks": checks}, indent=2) + "\n", encoding="utf-8")
    rows = [{"way": way, **found} for way, found in results.items()]
    notes = json.dumps({"device": device, "peak": peak_source, "parameters": parameters, "checks": checks})
    print(f"wrote {write_results('bench_gpu', rows, notes=notes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
