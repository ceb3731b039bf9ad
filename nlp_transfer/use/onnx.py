"""ONNX export of a model folder (export --onnx), checked against PyTorch with onnxruntime.

Why torch.onnx and not optimum: optimum's ONNX exporter (optimum-onnx 0.1.0, the latest release) requires
transformers < 4.58 and fails to import with transformers 5. torch's dynamo exporter, which optimum itself is moving
to, exports these models. It is used rather than the older TorchScript exporter, which froze transformers 5's
"no padding, no mask" shortcut into the graph when the example batch had no padding and then gave wrong logits on
padded batches (up to 0.016 measured).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import LABEL_PRIOR_FILE, label_names
from nlp_transfer.tasks import TASKS
from nlp_transfer.use.label_prior import LabelPrior, read_label_prior
from nlp_transfer.use.samples import MAX_LOGIT_DIFFERENCE, input_kind, sample_inputs
from nlp_transfer.use.trained import open_trained

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"  # export --quantize int8: ONNX_FILE quantized (share/quantize.py)
INSTALL_HINT = "pip install 'nlp-transfer[onnx]' (onnxruntime and onnxscript)"


class _Outputs(nn.Module):
    """The task model with tensor inputs by name and a tuple of tensor outputs, as the exporter wants. The inputs
    are those of every architecture here (DistilBERT, RoBERTa and GPT-2 tokenizers give a subset). A classifier's
    label-prior correction (label_prior.json) is part of the graph, so the ONNX logits are those predict uses."""

    def __init__(self, model: nn.Module, output_names: list[str], label_prior: LabelPrior | None = None) -> None:
        super().__init__()
        self.model = model
        self.output_names = output_names
        self.label_prior = label_prior

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        given = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        output = self.model(input_ids=input_ids, **{k: v for k, v in given.items() if v is not None})
        found = tuple(getattr(output, name) for name in self.output_names)
        return found if self.label_prior is None else (self.label_prior.adjust(found[0]),)


INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # _Outputs.forward's parameters


def export_onnx(folder: Path, recipe: dict[str, Any]) -> dict[str, Any]:
    """Write folder/model.onnx for the model in `folder` and check it; returns what export.json records."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  # the dynamo exporter needs it; fail here with the install hint
    except ImportError as err:
        raise UserError(f"export --onnx needs onnxruntime and onnxscript: {INSTALL_HINT}") from err
    trained = open_trained(folder)
    model, tokenizer = trained.load(), trained.tokenizer()
    inputs = sample_inputs(tokenizer, recipe)
    input_names = [name for name in INPUT_NAMES if name in inputs]
    output_names = list(input_kind(recipe).output_names)
    corrects = TASKS[recipe["task"]["name"]].corrects_label_prior
    label_prior = read_label_prior(folder, label_names(folder)) if corrects else None
    wrapper = _Outputs(model, output_names, label_prior).eval()
    given = {name: inputs[name] for name in input_names}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's own deprecation and axis-name notices
            torch.onnx.export(
                wrapper,
                (),
                str(folder / ONNX_FILE),
                kwargs=given,
                dynamo=True,
                verbose=False,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes={name: {0: batch, 1: sequence} for name in input_names},
                external_data=False,  # one file; fine below protobuf's 2 GB limit, which these models are
            )
    except RuntimeError as err:  # torch.onnx's OnnxExporterError and torch.export's errors are RuntimeErrors
        cause = err.__cause__ or err  # torch.onnx wraps torch.export's error, which says what went wrong
        raise UserError(
            f"export --onnx: torch.onnx could not export this model ({type(cause).__name__}: "
            f"{str(cause).strip().splitlines()[0] if str(cause).strip() else ''}); export without --onnx"
            + (" or with --merge (a LoRA adapter exports merged)" if (folder / "adapter_config.json").is_file() else "")
        ) from err
    seconds = time.perf_counter() - started
    session = onnxruntime.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    found = session.run(output_names, {name: tensor.numpy() for name, tensor in given.items()})
    with torch.inference_mode():
        expected = wrapper(**given)
    difference = max(float(np.abs(e.numpy() - f).max()) for e, f in zip(expected, found, strict=True))
    if difference > MAX_LOGIT_DIFFERENCE:
        raise UserError(
            f"export --onnx: onnxruntime's outputs differ from PyTorch's by {difference:.2g} on sample inputs; the "
            "ONNX file is not trustworthy and was not kept. Export without --onnx"
        )
    return {
        "file": ONNX_FILE,
        "inputs": input_names,
        "outputs": output_names,
        "exporter": f"torch.onnx dynamo (torch {torch.__version__})",
        "checked_with": f"onnxruntime {onnxruntime.__version__}",
        "max_abs_logit_difference": difference,
        "export_seconds": round(seconds, 2),
        **({"label_prior": f"{LABEL_PRIOR_FILE} applied in the graph"} if label_prior is not None else {}),
    }


def quantize_onnx(
    folder: Path, recipe: dict[str, Any], scheme: str, agreement_file: Path | None = None
) -> dict[str, Any]:
    """folder/model.int8.onnx: model.onnx quantized by `scheme` (share/quantize.py), then measured against it on
    the run's eval file or `agreement_file` (share/agreement.py); returns what export.json records."""
    from nlp_transfer.use.agreement import agreement_source, measure_agreement
    from nlp_transfer.use.quantize import quantize_file

    started = time.perf_counter()
    record = {"file": INT8_FILE, **quantize_file(folder / ONNX_FILE, folder / INT8_FILE, scheme)}
    seconds = time.perf_counter() - started
    source, chosen = agreement_source(recipe, agreement_file)
    record["agreement"] = measure_agreement(folder / ONNX_FILE, folder / INT8_FILE, recipe, source, chosen)
    return record | {
        "bytes": (folder / INT8_FILE).stat().st_size,
        "float_bytes": (folder / ONNX_FILE).stat().st_size,
        "quantize_seconds": round(seconds, 2),
    }
