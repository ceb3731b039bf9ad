"""Commands that send a trained model on: export (a standalone copy, ONNX and int8), push (to the Hub), serve (an
HTTP API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nlp_transfer.cli.app import (
    DeviceOpt,
    PrecisionOpt,
    reports_errors,
)
from nlp_transfer.core.errors import UserError
from nlp_transfer.runfolder.folder import SAMPLE_INPUTS


@reports_errors
def push(
    run_dir: Annotated[Path, typer.Argument(help="a complete run folder (or an export folder)")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub repo to push to: owner/name (created if missing)")],
    private: Annotated[bool, typer.Option("--private", help="create the repo private")] = False,
    revision: Annotated[
        str | None, typer.Option("--revision", help="branch to push to (created from main if missing)")
    ] = None,
    commit_message: Annotated[str | None, typer.Option("--commit-message", help="the commit's message")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the files, print the card, upload nothing")] = False,
) -> None:
    """Upload a trained model or LoRA adapter, with its model card and recipe, to the Hugging Face Hub."""
    from nlp_transfer.use.hub import PushOptions, check_repo_id, describe, plan_push
    from nlp_transfer.use.hub import push as push_plan

    check_repo_id(repo_id)
    plan = plan_push(run_dir, repo_id)
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if dry_run:
        typer.echo(describe(plan, repo_id))
        return
    options = PushOptions(repo_id=repo_id, private=private, revision=revision, commit_message=commit_message)
    record = push_plan(plan, options)
    typer.echo(f"pushed {len(record['files'])} files to {repo_id} ({record['revision']}): {record['commit_url']}")
    if record["deleted"]:
        typer.echo(f"deleted from the repo (an earlier model's files): {', '.join(record['deleted'])}")
    typer.echo(f"use it anywhere: nlp-transfer predict {repo_id} {plan.trained.task.predict_example}")


@reports_errors
def export(
    model: Annotated[str, typer.Argument(help="a complete run folder (or a copy of one, or a repo id)")],
    out: Annotated[
        Path,
        typer.Option("--output-dir", "--out", help="folder to write (must not hold anything but an earlier export)"),
    ],
    merge: Annotated[
        bool, typer.Option("--merge", help="LoRA: fold the adapter into the base weights (a plain transformers model)")
    ] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="also write model.onnx, checked against PyTorch (needs nlp-transfer[onnx])")
    ] = False,
    quantize: Annotated[
        str | None,
        typer.Option(
            "--quantize",
            help="int8: also model.int8.onnx (onnxruntime dynamic quantization, its agreement with model.onnx "
            "measured on the run's eval file); implies --onnx",
        ),
    ] = None,
    int8_scheme: Annotated[
        str,
        typer.Option(
            "--int8-scheme",
            help="with --quantize int8: per-channel-ffn-float (default: per-channel weights, each block's "
            "feed-forward output in float), per-channel, or dynamic (one scale per matrix)",
        ),
    ] = "per-channel-ffn-float",
    agreement_file: Annotated[
        Path | None,
        typer.Option(
            "--agreement-file",
            help="with --quantize int8: measure the int8 model's agreement with model.onnx on this file (the "
            "model's input columns, as predict --file reads it) instead of the run's eval file",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an earlier export in --out")] = False,
) -> None:
    """A self-contained copy of a trained model to ship: the files push uploads, optionally merged or ONNX."""
    from nlp_transfer.use.export import ExportOptions
    from nlp_transfer.use.export import export as export_model

    if quantize is not None and quantize != "int8":
        raise UserError(f"export --quantize {quantize}: only int8 is supported; use --quantize int8")
    options = ExportOptions(
        out=out,
        merge=merge,
        onnx=onnx,
        overwrite=overwrite,
        quantize=quantize,
        int8_scheme=int8_scheme,
        agreement_file=agreement_file,
    )
    result = export_model(model, options)
    checks = [
        f"{name}: max |logit difference| {result.record[name]['max_abs_logit_difference']:.1e}"
        for name in ("merge", "onnx")
        if name in result.record
    ]
    if "onnx_int8" in result.record:
        checks.append(int8_summary(result.record["onnx_int8"]))
    typer.echo(f"exported {model} to {result.folder}" + (f" ({'; '.join(checks)})" if checks else ""))


def int8_summary(int8: dict[str, Any]) -> str:
    """One clause on how far model.int8.onnx agrees with model.onnx (export.json's onnx_int8)."""
    measured = int8["agreement"]
    on = "sample inputs" if measured["inputs"] == SAMPLE_INPUTS else Path(measured["inputs"]).name
    parts = [f"labels agree on {measured['label_agreement']:.2%}"] if "label_agreement" in measured else []
    for key, words in (("max_probability_difference", "probability"), ("max_value_difference", "value")):
        if key in measured:
            parts.append(f"max |{words} difference| {measured[key]:.3f}")
    return f"int8 ({int8['scheme']}): {', '.join(parts)} on {measured['n']} inputs of {on}"


@reports_errors
def serve(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="run folders, exports, an export's model.onnx / model.int8.onnx, or repo ids"),
    ] = None,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="serve a model under a name: NAME=PATH (repeatable)")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port (0: any free one)")] = 8000,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="texts per model batch")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="how long a request waits for others to batch with")
    ] = 5.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="texts waiting per model; beyond it requests get 503")
    ] = 1024,
    max_inputs: Annotated[int, typer.Option("--max-inputs", min=1, help="inputs per request (413 above)")] = 256,
    max_chars: Annotated[
        int | None,
        typer.Option("--max-chars", min=1, help="characters per text (413 above; default: the model's own policy)"),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="refuse (422) a text the model would truncate instead of truncating it")
    ] = False,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", min=1, help="request body size (413 above)")] = (
        1 << 20
    ),
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="seconds to answer a request (504)")] = 30.0,
    grace: Annotated[
        float, typer.Option("--grace", min=0, help="seconds in-flight requests get to finish after SIGTERM")
    ] = 30.0,
    api_keys_file: Annotated[
        Path | None,
        typer.Option("--api-keys-file", help="one API key a line (default: $NLP_TRANSFER_API_KEYS; none: open)"),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="allow browser calls from this origin (repeatable)")
    ] = None,
) -> None:
    """Serve trained models over HTTP: POST /v1/models/NAME/predict gives what `predict` prints, batched across
    callers; /v1/models, /health, /ready, /metrics and /docs. Binds 127.0.0.1 unless --host says otherwise."""
    from nlp_transfer.serve.batching import BatchSettings
    from nlp_transfer.serve.lifecycle import ServeOptions
    from nlp_transfer.serve.lifecycle import serve as run_server
    from nlp_transfer.serve.limits import Limits

    options = ServeOptions(
        models=list(models or []),
        names=list(name or []),
        host=host,
        port=port,
        device=device,
        precision=precision,
        limits=Limits(max_body_bytes, max_inputs, max_chars, strict, timeout),
        batching=BatchSettings(max_batch, max_wait_ms / 1000, max_queue),
        api_keys_file=api_keys_file,
        cors_origins=list(cors_origin or []),
        grace=grace,
    )
    run_server(options, lambda line: typer.echo(line, err=True))
