"""An ONNX export (model.onnx, or model.int8.onnx) run by onnxruntime behind the PyTorch model's interface, so that
predict, evaluate and serve read it through the same predictors: name the file instead of the folder
(`nlp-transfer predict EXPORT/model.int8.onnx "a text"`).

The graph `export --onnx` writes takes the tokenizer's tensors by name and returns the task's outputs by name (logits;
QA's start_logits and end_logits), with a classifier's label-prior correction already inside (use/onnx.py). This
module wraps an onnxruntime session as an nn.Module without parameters whose forward returns those outputs as CPU
tensors: the predictors pad, run and read outputs exactly as they do for PyTorch. onnxruntime runs on the CPU here
(its CPU provider); the tokenizer's tensors are moved to the CPU whatever device the caller picked.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig
from transformers.utils import ModelOutput

from nlp_transfer.core.errors import UserError

ONNX_FILES = {"model.onnx": "fp32", "model.int8.onnx": "int8"}  # use.onnx's ONNX_FILE and INT8_FILE
INSTALL_HINT = "pip install 'nlp-transfer[onnx]'"


class OnnxModel(nn.Module):
    """onnxruntime's session as a model: forward(input_ids, attention_mask, ...) -> ModelOutput of CPU tensors."""

    label_prior_in_graph = True  # export --onnx puts a classifier's label-prior correction in the graph

    def __init__(self, path: Path, config_folder: Path) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError as err:
            raise UserError(f"{path}: running an ONNX model needs onnxruntime: {INSTALL_HINT}") from err
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its graph-optimisation notices are not for the terminal
        # Its worker threads sleep between runs instead of spinning: a spinning pool takes the cores from the
        # tokenizer and, in a server, from the event loop between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (RuntimeError, ValueError, OSError) as err:  # onnxruntime's Fail/InvalidGraph derive from these
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"{path}: onnxruntime could not read it ({first}); export the run again") from err
        self.input_names = [given.name for given in self.session.get_inputs()]
        self.output_names = [found.name for found in self.session.get_outputs()]
        self.config = AutoConfig.from_pretrained(config_folder)
        self.precision = ONNX_FILES.get(path.name, "fp32")

    def forward(self, **inputs: torch.Tensor) -> ModelOutput:
        feed = {name: inputs[name].detach().cpu().numpy() for name in self.input_names if name in inputs}
        found = self.session.run(self.output_names, feed)
        outputs = zip(self.output_names, found, strict=True)
        return ModelOutput({name: torch.from_numpy(value) for name, value in outputs})  # (B, K) or (B, T) each


def onnx_file_of(path: Path) -> str | None:
    """The ONNX file's name when `path` names one an export writes (model.onnx, model.int8.onnx), else None."""
    return path.name if path.suffix == ".onnx" else None


def check_onnx_file(path: Path, origin: str) -> None:
    """An ONNX file we can read: one `export --onnx` writes, present and not empty."""
    if path.name not in ONNX_FILES:
        raise UserError(
            f"{origin}: not an ONNX file nlp-transfer exports ({', '.join(ONNX_FILES)}); pass the export folder's "
            "model.onnx or model.int8.onnx"
        )
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"{origin}: missing or empty; export the run again with --onnx (and --quantize int8)")
