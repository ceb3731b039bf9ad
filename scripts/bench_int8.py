"""ONNX int8 schemes on a trained run: label agreement with ONNX fp32 and speed, one row per scheme (issue 27).

For the run (default: the SST-2 quickstart, all-MiniLM-L6-v2), the script exports model.onnx once, then quantizes it
with each scheme export offers (share/quantize.py's SCHEMES) and two it does not offer but that were tried:
    static-qdq      static QDQ quantization (per-channel int8 weights, uint8 activations with ranges calibrated by
                    MinMax on --calibration-samples training sentences of the run's data.train)
    weight-only-8   8-bit weight-only MatMulNBits (block 32, int8 compute: accuracy_level 4)
Each int8 file is measured against model.onnx on the eval file (default: the run's data.eval, SST-2 dev's 872
sentences) through the predictors `predict` uses (share/agreement.py: label agreement, largest probability
difference), and its speed is texts/s through the same predictor (length-sorted batches of 32, as predict --file),
the best of --repeats passes, fp32 measured before and after the int8 files (its mean is the reference).

How to run (alone on the machine: speed ratios are meaningless beside other work); about 4 minutes on 2 cores:
    HF_HUB_OFFLINE=1 NLP_TRANSFER_DATA=../shared/data .venv/bin/python scripts/bench_int8.py --run RUN_DIR
    --quick: 64 sentences, 1 pass, 32 calibration sentences (checks the script works; ~1 minute)
Results: results/bench_int8.json (on the speed results page).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from bench_results import write_results

from nlp_transfer.data.assets import default_data_root, resolve_data_file
from nlp_transfer.use.agreement import agreement_source, measure_agreement
from nlp_transfer.use.export import ExportOptions, export
from nlp_transfer.use.predict import open_predictor, predictions
from nlp_transfer.use.quantize import DEFAULT_SCHEME, SCHEMES, quantize_file

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.99  # issue 27: label agreement with the float model on SST-2 dev
FLOAT, INT8 = "model.onnx", "model.int8.onnx"


def texts_of(path: Path, column: str, limit: int) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    index = header.index(column)
    return [line.split("\t")[index] for line in lines[1 : limit + 1] if line.strip()]


def static_qdq(calibration: list[str], folder: Path) -> Callable[[Path, Path], dict[str, Any]]:
    def quantize(source: Path, target: Path) -> dict[str, Any]:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        recipe = yaml.safe_load((folder / "recipe.resolved.yaml").read_text(encoding="utf-8"))
        limit = recipe["task"]["max_length"]

        class Batches(CalibrationDataReader):  # type: ignore[misc]
            def __init__(self) -> None:
                ordered = sorted(calibration, key=len)
                self.batches = iter(
                    [
                        {
                            k: v.astype(np.int64)
                            for k, v in tokenizer(
                                ordered[i : i + 32],
                                truncation=True,
                                max_length=limit,
                                padding=True,
                                return_tensors="np",
                            ).items()
                        }
                        for i in range(0, len(ordered), 32)
                    ]
                )

            def get_next(self) -> dict[str, Any] | None:
                return next(self.batches, None)

        quantize_static(
            str(source), str(target), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["MatMul", "Gemm"],
        )  # fmt: skip
        return {"quantization": f"static QDQ, per-channel, MinMax on {len(calibration)} training sentences"}

    return quantize


def weight_only_8(source: Path, target: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=32, is_symmetric=True,
                                     accuracy_level=4, algo_config=config)  # fmt: skip
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), False)
    return {"quantization": "8-bit weight-only MatMulNBits, block 32, int8 compute"}


def scheme(name: str) -> Callable[[Path, Path], dict[str, Any]]:
    return lambda source, target: quantize_file(source, target, name)


def speed(model: Path, texts: list[str], repeats: int) -> float:
    """texts/s through predict's predictor (length-sorted batches of 32), best of `repeats` passes."""
    predictor = open_predictor(model)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in predictions(predictor, texts):
            pass
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=REPO / "runs" / "quickstart", help="a complete run folder")
    parser.add_argument("--data", type=Path, default=None, help="eval file (default: the run's data.eval)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calibration-samples", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="64 sentences, 1 pass: check that the script works")
    args = parser.parse_args()
    limit, repeats, calibrate = (64, 1, 32) if args.quick else (None, args.repeats, args.calibration_samples)
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))
    try:
        rows = measure(args, work, limit, repeats, calibrate)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        print(row, file=sys.stderr)
    notes = (
        f"Default scheme: {DEFAULT_SCHEME}. Target: label agreement >= {TARGET:.0%} with ONNX fp32 while at least "
        "1.8x its texts/s. static-qdq and weight-only-8 are measured only (export does not offer them)."
    )
    path = write_results(
        "bench_int8",
        rows,
        seeds=[42],
        notes=notes,
        on_page={
            "page": "speed",
            "title": "ONNX int8 schemes",
            "order": 2.5,
            "columns": ["scheme", "label agreement", "max probability difference", "n", "texts/s", "x fp32", "MB"],
            "intro": "**ONNX int8 schemes** (`python scripts/bench_int8.py --run RUN`: each int8 file against "
            "model.onnx on the run's eval file, through predict's predictor, batches of 32):",
        },
    )
    print(f"wrote {path}", file=sys.stderr)


def measure(
    args: argparse.Namespace, work: Path, limit: int | None, repeats: int, calibrate: int
) -> list[dict[str, Any]]:
    recipe = yaml.safe_load((args.run / "recipe.resolved.yaml").read_text(encoding="utf-8"))
    float_folder = work / "fp32"
    export(args.run, ExportOptions(out=float_folder, onnx=True))
    source, chosen = agreement_source(recipe, args.data)
    if source is None:
        raise SystemExit(f"no eval file for {args.run} ({chosen}); pass --data")
    text_column = recipe["task"]["text"]
    texts = texts_of(source, text_column, limit or 10**9)
    eval_file = work / "eval.tsv"  # the (possibly shortened) eval set both measurements read
    eval_file.write_text(f"{text_column}\n" + "\n".join(texts) + "\n", encoding="utf-8")
    train = Path(resolve_data_file(recipe["data"]["train"], default_data_root(), Path.cwd(), "data.train").location)
    calibration = texts_of(train, text_column, 20000)[:: max(1, 20000 // calibrate)][:calibrate]
    choices: dict[str, Callable[[Path, Path], dict[str, Any]]] = {name: scheme(name) for name in SCHEMES}
    choices |= {"static-qdq": static_qdq(calibration, float_folder), "weight-only-8": weight_only_8}
    before = speed(float_folder / FLOAT, texts, repeats)
    measured = []
    for name, quantize in choices.items():
        folder = work / name
        shutil.copytree(float_folder, folder)
        started = time.perf_counter()
        how = quantize(folder / FLOAT, folder / INT8)
        seconds = time.perf_counter() - started
        agreement = measure_agreement(folder / FLOAT, folder / INT8, recipe, eval_file, "--agreement-file")
        measured.append((name, how, seconds, agreement, speed(folder / INT8, texts, repeats), folder / INT8))
    after = speed(float_folder / FLOAT, texts, repeats)
    reference = (before + after) / 2
    size = round((float_folder / FLOAT).stat().st_size / 1e6, 1)
    rows = [{"scheme": "ONNX fp32", "n": len(texts), "texts/s": round(reference, 1), "x fp32": 1.0, "MB": size}]
    rows[0]["fp32 texts/s before, after"] = [round(before, 1), round(after, 1)]
    for name, how, seconds, agreement, rate, path in measured:
        rows.append(
            {
                "scheme": name + (" (default)" if name == DEFAULT_SCHEME else ""),
                "quantization": how.get("quantization"),
                "label agreement": agreement["label_agreement"],
                "max probability difference": agreement["max_probability_difference"],
                "n": agreement["n"],
                "texts/s": round(rate, 1),
                "x fp32": round(rate / reference, 2),
                "MB": round(path.stat().st_size / 1e6, 1),
                "quantize seconds": round(seconds, 1),
                "meets target": agreement["label_agreement"] >= TARGET and rate / reference >= 1.8,
            }
        )
    return rows


if __name__ == "__main__":
    main()
