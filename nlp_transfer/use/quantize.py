"""How `export --quantize int8` turns model.onnx into model.int8.onnx: the schemes, one table.

All three are onnxruntime's dynamic quantization (int8 weights; each matrix product's input quantized on the fly,
one scale per batch), which needs no calibration data. They differ in what they keep exact:

- `dynamic`: one scale per weight matrix, every matrix product with a constant weight in int8.
- `per-channel`: one scale per output column of each weight matrix (a column of small weights is not crushed by
  the matrix's largest one).
- `per-channel-ffn-float` (the default): per-channel, and each block's feed-forward output projection left in
  float. Its input, the GELU output, has a few large outlier features, and one activation scale per batch then
  rounds the rest coarsely: on the SST-2 quickstart model, leaving those six products in float halved the labels
  int8 changed (label agreement on the 872 dev sentences: dynamic 97.5%, per-channel 98.3%, per-channel-ffn-float
  99.1-99.2%; scripts/bench_int8.py measures them). It keeps a third of each block's matrix work in fp32.

Measured and not offered (scripts/bench_int8.py keeps them measurable): static QDQ quantization calibrated on
training texts (94.4% agreement: a fixed activation range fits these activations worse than one per batch) and
8-bit weight-only MatMulNBits (99.9%, but no faster than float here).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.methods.architectures import ARCHITECTURES

NAME_SCOPES = "pkg.torch.onnx.name_scopes"  # torch.onnx's dynamo exporter: a node's module path, outermost first


@dataclass(frozen=True)
class Scheme:
    description: str  # what export.json records
    per_channel: bool
    ffn_output_in_float: bool


SCHEMES = {
    "per-channel-ffn-float": Scheme(
        "dynamic int8, per-channel weights; each block's feed-forward output projection kept in float", True, True
    ),
    "per-channel": Scheme("dynamic int8, per-channel weights", True, False),
    "dynamic": Scheme("dynamic int8, one scale per weight matrix", False, False),
}
DEFAULT_SCHEME = "per-channel-ffn-float"  # the fastest scheme that kept >= 99% of SST-2 dev labels


def check_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise UserError(f"export --int8-scheme {name}: not a scheme; use one of {', '.join(SCHEMES)}")
    return SCHEMES[name]


def quantize_file(source: Path, target: Path, scheme_name: str) -> dict[str, Any]:
    """target = source quantized by the scheme; returns what export.json records about it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    scheme = check_scheme(scheme_name)
    in_float = ffn_output_nodes(source) if scheme.ffn_output_in_float else []
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=scheme.per_channel,
            nodes_to_exclude=in_float,
        )
    except (RuntimeError, ValueError, OSError) as err:  # onnxruntime's Fail is a RuntimeError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"export --quantize int8: onnxruntime could not quantize the model ({reason})") from err
    return {"scheme": scheme_name, "quantization": scheme.description, "nodes_in_float": len(in_float)}


def ffn_output_nodes(path: Path) -> list[str]:
    """The graph's nodes that belong to a block's feed-forward output projection (methods.architectures'
    ffn_output), found by the module path the exporter records on each node; [] for an unknown architecture."""
    import onnx

    model_type = json.loads((path.parent / "config.json").read_text(encoding="utf-8")).get("model_type")
    arch = ARCHITECTURES.get(model_type or "")
    if arch is None:
        return []
    module = re.compile(rf"(^|\.){re.escape(arch.layers)}\.\d+\.{re.escape(arch.ffn_output)}$")
    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if any(module.search(scope) for scope in _scopes(node))]


def _scopes(node: Any) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES:
            found = ast.literal_eval(prop.value)  # a Python list literal: ['', 'model', 'model.bert', ...]
            return [str(scope) for scope in found]
    return []
