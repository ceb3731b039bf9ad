"""`nlp-transfer export`: a trained model as a self-contained folder to ship (the files push would upload).

--merge folds a LoRA adapter into its base model's weights: a plain transformers folder that loads without peft or
the base model, and predicts what the adapter did (checked here on sample inputs; the tests check real data).
--onnx adds model.onnx (onnx_export.py), checked against PyTorch the same way.

The folder is written beside its destination and renamed into place at the end: an interrupted export leaves
nothing half-written, and --overwrite replaces an earlier export only once the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_folder
from nlp_transfer.core.quiet import quiet_libraries
from nlp_transfer.data.stream import StreamOptions, check_stream
from nlp_transfer.methods.base import save_model_folder
from nlp_transfer.methods.lora import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_CONFIG_FILE
from nlp_transfer.report.card import model_card
from nlp_transfer.runfolder.folder import CARD_FILE, EXPORT_FILE, TOKENIZER_RECORD, tokenizer_record
from nlp_transfer.use.quantize import DEFAULT_SCHEME, check_scheme
from nlp_transfer.use.samples import MAX_LOGIT_DIFFERENCE, max_difference, sample_outputs
from nlp_transfer.use.trained import Trained, open_trained, shared_files

ADAPTER_FILES = {ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, BASE_CONFIG_FILE}


@dataclass
class ExportOptions:
    out: Path
    merge: bool = False
    onnx: bool = False
    overwrite: bool = False
    quantize: str | None = None  # int8: also model.int8.onnx (implies onnx)
    int8_scheme: str = DEFAULT_SCHEME  # how (share/quantize.py's SCHEMES)
    agreement_file: Path | None = None  # int8 vs float measured on this file (default: the run's eval file)


@dataclass
class ExportResult:
    folder: Path
    record: dict[str, Any] = field(default_factory=dict)


def export(reference: str | Path, options: ExportOptions) -> ExportResult:
    check_output_folder(options.out, "--output-dir")  # before anything is read: a file in the way, an unwritable place
    _check_int8_options(options)
    trained = open_trained(reference)
    _check_target(options.out, options.overwrite)
    if options.merge and trained.layout.name != "adapter":
        raise UserError(
            f"export --merge: {trained.origin} holds a {trained.layout.name} model ({trained.recipe['method']['name']}"
            " run), not a LoRA adapter; its weights are already whole: drop --merge"
        )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.out.name}.", dir=options.out.parent))
    try:
        record: dict[str, Any] = {"exported_from": str(trained.origin)}
        if options.merge:
            record["merge"] = _merged(trained, staging)
        else:
            _copy(trained, staging, skip=set())
        if options.onnx or options.quantize:
            from nlp_transfer.use.onnx import export_onnx, quantize_onnx

            with quiet_libraries():  # torch.onnx's "torchvision is not installed", onnxruntime's advice
                record["onnx"] = export_onnx(staging, trained.recipe)
                if options.quantize:
                    record["onnx_int8"] = quantize_onnx(
                        staging, trained.recipe, options.int8_scheme, options.agreement_file
                    )
        record["exported_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        (staging / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(model_card(staging), encoding="utf-8")
        _move_into_place(staging, options.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(options.out, record)


def _check_int8_options(options: ExportOptions) -> None:
    check_scheme(options.int8_scheme)
    if options.quantize is None and (options.agreement_file is not None or options.int8_scheme != DEFAULT_SCHEME):
        option = "--agreement-file" if options.agreement_file is not None else "--int8-scheme"
        raise UserError(f"export {option}: it is about the int8 model; add --quantize int8 or drop {option}")
    if options.agreement_file is not None:
        check_stream(options.agreement_file, StreamOptions(), "--agreement-file")


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not (out / EXPORT_FILE).is_file():
        raise UserError(
            f"--output-dir {out}: exists and is not an nlp-transfer export (never replaced); choose another "
            "--output-dir"
        )
    if not overwrite:
        raise UserError(
            f"--output-dir {out}: holds an earlier export; pass --overwrite to replace it, or another --output-dir"
        )


def _copy(trained: Trained, staging: Path, skip: set[str]) -> None:
    for path in shared_files(trained.folder):
        relative = path.relative_to(trained.folder)
        if relative.as_posix() in skip or relative.as_posix() == CARD_FILE:
            continue
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, staging / relative)


def _merged(trained: Trained, staging: Path) -> dict[str, Any]:
    """Fold the LoRA updates into the base weights, save a plain model folder, and check it predicts the same."""
    adapter = trained.load()
    tokenizer = trained.tokenizer()
    expected = sample_outputs(adapter, tokenizer, trained.recipe)
    merged = adapter.merge_and_unload()  # type: ignore[operator]
    _copy(trained, staging, skip=ADAPTER_FILES)  # the recipe, metrics and environment records, the tokenizer
    with quiet_libraries():
        save_model_folder(merged, staging, tokenizer=tokenizer, base_model="")
        reloaded = trained.task.auto_model_class.from_pretrained(staging, use_safetensors=True).eval()
    # The tokenizer was saved again with the merged model: record the files as they now are.
    (staging / TOKENIZER_RECORD).write_text(
        json.dumps(tokenizer_record(staging, tokenizer), indent=2) + "\n", encoding="utf-8"
    )
    difference = max_difference(expected, sample_outputs(reloaded, tokenizer, trained.recipe))
    if difference > MAX_LOGIT_DIFFERENCE:
        raise UserError(
            f"export --merge: the merged model's outputs differ from the adapter's by {difference:.2g} on sample "
            "inputs (more than rounding); the adapter may use a LoRA variant that does not merge exactly. Nothing "
            "was written; share the adapter (export without --merge)"
        )
    return {"from": "lora adapter", "max_abs_logit_difference": difference, "checked_inputs": len(expected[0])}


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an earlier export there is removed only after the rename succeeded."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
