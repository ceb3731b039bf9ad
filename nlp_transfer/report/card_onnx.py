"""The model card's lines about an export's ONNX files (export.json's onnx and onnx_int8): what they hold, how far
the int8 model agrees with the float one and on what, and how to run them with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nlp_transfer.report.card_usage import DEFAULT_EXAMPLES, example_call
from nlp_transfer.runfolder.folder import SAMPLE_INPUTS

ONNX_NOTE = "model.onnx holds the same model for onnxruntime; export.json records its check against PyTorch."


def onnx_notes(exported: dict[str, Any]) -> list[str]:
    """Paragraphs for the card's introduction: [] when the export wrote no ONNX file."""
    if "onnx" not in exported:
        return []
    lines = ["", ONNX_NOTE]
    int8 = exported.get("onnx_int8")
    if int8:
        lines += ["", f"model.int8.onnx is model.onnx quantized to int8 ({int8['quantization']}). {_agreement(int8)}"]
    return lines


def _agreement(int8: dict[str, Any]) -> str:
    measured = int8.get("agreement", {})
    if "n" not in measured:
        return ""
    on = "the six sample inputs" if measured["inputs"] == SAMPLE_INPUTS else f"`{Path(measured['inputs']).name}`"
    parts = []
    if "label_agreement" in measured:
        parts.append(f"its predictions equal the float model's on {100 * measured['label_agreement']:.2f}%")
    if "entity_agreement" in measured:
        parts.append(f"its entities on {100 * measured['entity_agreement']:.2f}%")
    for key, words in (("max_probability_difference", "probability"), ("max_value_difference", "predicted value")):
        if key in measured:
            parts.append(f"the largest {words} difference is {measured[key]:.3f}")
    return f"Measured at export on {measured['n']} inputs of {on}: {', '.join(parts)}."


def onnx_usage(
    exported: dict[str, Any], pipeline_tag: str, where: str, repo_id: str | None, example: Any, max_length: int
) -> list[str]:
    """'How to use' lines for the ONNX files: onnxruntime directly, and nlp-transfer predict on the file."""
    if "onnx" not in exported:
        return []
    name = "model.int8.onnx" if "onnx_int8" in exported else "model.onnx"
    outputs = exported["onnx"].get("outputs", ["logits"])
    given = example or DEFAULT_EXAMPLES[pipeline_tag]
    if pipeline_tag == "question-answering":
        texts = f"[{json.dumps(given['question'])}], [{json.dumps(given['context'])}]"
    else:
        texts = f"[{json.dumps(given['text'])}]"
    locate = (
        ["from huggingface_hub import hf_hub_download", f'onnx_file = hf_hub_download("{repo_id}", "{name}")']
        if repo_id
        else [f'onnx_file = "{where}/{name}"']
    )
    return [
        "",
        f"With onnxruntime (`pip install onnxruntime transformers`), {name} on the CPU:",
        "```python",
        "import numpy as np",
        "import onnxruntime",
        "from transformers import AutoTokenizer",
        *locate,
        f'tokenizer = AutoTokenizer.from_pretrained("{where}")',
        'session = onnxruntime.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])',
        f'batch = tokenizer({texts}, truncation=True, max_length={max_length}, padding=True, return_tensors="np")',
        "feed = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}",
        f"({', '.join(outputs)},) = session.run({json.dumps(outputs)}, feed)  # numpy arrays, one row per input",
        "```",
        *(
            ["The label names are config.json's id2label (any label-prior correction is already in the graph)."]
            if pipeline_tag == "text-classification"
            else []
        ),
        f"Or: `nlp-transfer predict {'path/to/a/copy' if repo_id else where}/{name} "
        f"{example_call(pipeline_tag, example)[1]}`: the tokenization, long-text windows and labels of the PyTorch "
        "model (evaluate and serve take the file too).",
    ]
