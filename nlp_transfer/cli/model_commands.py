"""Commands that read a trained model (a run folder, a copy of one, or a pushed repo id): predict, evaluate,
export, push; and cluster, which embeds a corpus with any encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nlp_transfer.cli.app import (
    ColumnsOpt,
    DelimiterOpt,
    DeviceOpt,
    EncodingOpt,
    PrecisionOpt,
    RevisionOpt,
    column_names,
    delimiter_option,
    reports_errors,
)
from nlp_transfer.core.errors import UserError


@reports_errors
def predict(
    model: Annotated[str, typer.Argument(help="a complete run folder, a copy of one (export, download), or a repo id")],
    texts: Annotated[list[str] | None, typer.Argument(help="texts to classify")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="csv/tsv/jsonl/json, or one text per line; read as it streams (any size), predictions in its order",
        ),
    ] = None,
    text: Annotated[
        str | None, typer.Option("--text", help="--file's text column (default: the one trained on, else 'text')")
    ] = None,
    text_pair: Annotated[
        list[str] | None,
        typer.Option(
            "--text-pair",
            help="sentence-pair models: with --file, the column of second texts (default: the one trained on); "
            "with texts as arguments, each one's second text (repeat it)",
        ),
    ] = None,
    columns: ColumnsOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = "utf-8",
    question: Annotated[str | None, typer.Option("--question", help="QA: the question")] = None,
    context: Annotated[str | None, typer.Option("--context", help="QA: the passage that holds the answer")] = None,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="token classification: the arguments are the words of one sentence (with --file: JSONL rows hold "
            "a tokens list)",
        ),
    ] = False,
    aggregation: Annotated[
        str,
        typer.Option(
            "--aggregation", help="token classification: a word's tag from its sub-words: first, average or max"
        ),
    ] = "first",
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="--file columns to write beside each prediction (repeat it, or id,stars; default: all of them)",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write here instead of stdout: a .csv or .tsv name writes a table, else JSONL"),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="texts per inference batch (sorted by length within each window of batches)"
        ),
    ] = 32,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    revision: RevisionOpt = None,
) -> None:
    """Predictions in input order, each after its --file row's columns: label and probability for each text (or
    text pair), answer, score and offsets (QA), or entities with type, offsets and score (token classification);
    JSON lines, or CSV/TSV by --out's extension. Under `accelerate launch` the processes share the file out and the
    main one merges."""
    from nlp_transfer.core.distributed import is_main
    from nlp_transfer.core.files import check_output_file
    from nlp_transfer.core.hardware import Runtime
    from nlp_transfer.data.stream import StreamOptions
    from nlp_transfer.use.predict import PredictInputs, open_predictor, predict_inputs, read_inputs

    if out is not None:
        check_output_file(out, "--out")  # before the model loads, not after it has run
    runtime = Runtime.choose(device, precision)
    predictor = open_predictor(model, batch_size=batch_size, revision=revision, runtime=runtime)
    given = PredictInputs(
        texts=list(texts or []),
        file=file,
        question=question,
        context=context,
        text_pairs=list(text_pair or []),
        text_column=text,
        keep=[name.strip() for value in keep for name in value.split(",") if name.strip()] if keep else None,
        tokens=tokens,
        aggregation=aggregation,
        stream=StreamOptions(encoding=encoding, columns=column_names(columns), delimiter=delimiter_option(delimiter)),
    )
    inputs = read_inputs(predictor, given)
    created = [folder for folder in reversed(out.parents) if not folder.exists()] if out is not None else []
    predict_inputs(predictor, inputs, out, show_progress=file is not None)
    if out is not None and is_main():
        typer.echo(f"wrote {inputs.count} predictions to {out}{_created(created)} ({runtime.describe()})", err=True)


@reports_errors
def cluster(
    model: Annotated[str, typer.Argument(help="encoder: hub id, model folder, or a complete run folder")],
    data: Annotated[str, typer.Argument(help="csv/tsv/jsonl/json/txt file, or a name under the data root")],
    k: Annotated[int | None, typer.Option("--k", help="number of clusters (default: distinct --label values)")] = None,
    text: Annotated[str, typer.Option("--text", help="column holding the text")] = "text",
    label: Annotated[
        str | None, typer.Option("--label", help="column of true labels: scores the clusters (never used to fit)")
    ] = None,
    columns: ColumnsOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = "utf-8",
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="truncate texts to this many tokens")] = 128,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="texts per inference batch (sorted by length within each window of batches)"
        ),
    ] = 32,
    examples: Annotated[int, typer.Option("--examples", min=1, help="texts closest to each centroid to show")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="fixes the subset, k-means and the silhouette sample")] = 42,
    out: Annotated[
        Path | None, typer.Option("--output-dir", "--out", help="folder (default runs/cluster-<data>-<time>)")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="write into a non-empty --out")] = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
) -> None:
    """Embed a corpus with an encoder (mean pooling) and cluster it with k-means; with --label, score the clusters."""
    from nlp_transfer.use.cluster import ClusterOptions, run_cluster, summary_line

    names = column_names(columns)
    options = ClusterOptions(
        model=model,
        data=data,
        k=k,
        text=text,
        label=label,
        columns=names,
        delimiter=delimiter_option(delimiter),
        encoding=encoding,
        max_samples=max_samples,
        max_length=max_length,
        batch_size=batch_size,
        examples=examples,
        seed=seed,
        out=out,
        overwrite=overwrite,
        device=device,
        precision=precision,
    )
    folder, metrics = run_cluster(options)
    typer.echo(f"{summary_line(metrics)} -> {folder}")


@reports_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="a complete run folder, a copy of one (export, download), or a repo id")],
    data: Annotated[
        str, typer.Option("--data", help="labelled csv/tsv/jsonl/json (SQuAD json for QA), a name under the data root")
    ],
    text: Annotated[str | None, typer.Option("--text", help="text column (default: the one trained on)")] = None,
    text_pair: Annotated[str | None, typer.Option("--text-pair", help="second text column of a pair task")] = None,
    label: Annotated[str | None, typer.Option("--label", help="label column (default: the one trained on)")] = None,
    label_lines: Annotated[
        str | None, typer.Option("--label-lines", help="a file with one label per line for a plain-text --data")
    ] = None,
    columns: ColumnsOpt = None,
    delimiter: DelimiterOpt = None,
    encoding: EncodingOpt = "utf-8",
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    seed: Annotated[int, typer.Option("--seed", help="picks the --max-samples subset")] = 42,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="texts per inference batch (sorted by length within each window of batches)"
        ),
    ] = 32,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    revision: RevisionOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the metrics as JSON here as well")] = None,
) -> None:
    """The task's metrics for a trained model on a labelled file: JSON on stdout, a summary line on stderr."""
    from nlp_transfer.core.files import check_output_file, write_output_file
    from nlp_transfer.use.evaluate import EvaluateOptions, evaluate_model, summary

    if out is not None:
        check_output_file(out, "--out")  # before the model loads, not after it has run

    options = EvaluateOptions(
        model=model,
        data=data,
        revision=revision,
        columns=column_names(columns),
        delimiter=delimiter_option(delimiter),
        encoding=encoding,
        text=text,
        text_pair=text_pair,
        label=label,
        label_lines=label_lines,
        max_samples=max_samples,
        seed=seed,
        batch_size=batch_size,
        device=device,
        precision=precision,
    )
    result = evaluate_model(options)
    text_out = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text_out)
    if out is not None:
        created = write_output_file(out, text_out)
        typer.echo(f"wrote the metrics to {out}{_created(created)}", err=True)
    typer.echo(summary(result), err=True)


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


@reports_errors
def report(
    runs: Annotated[list[Path], typer.Argument(help="one or more complete run folders")],
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="with several runs: where their joint report goes (default runs/report-*)"),
    ] = None,
) -> None:
    """Rebuild a run's report.html (recipe, metrics, figures inline, worst errors); several runs: overlaid curves."""
    from nlp_transfer.report.report import rebuild

    typer.echo(f"wrote {rebuild(list(runs), output_dir)}")


def int8_summary(int8: dict[str, Any]) -> str:
    """One clause on how far model.int8.onnx agrees with model.onnx (export.json's onnx_int8)."""
    measured = int8["agreement"]
    on = "sample inputs" if measured["inputs"] == "use.samples" else Path(measured["inputs"]).name
    parts = [f"labels agree on {measured['label_agreement']:.2%}"] if "label_agreement" in measured else []
    for key, words in (("max_probability_difference", "probability"), ("max_value_difference", "value")):
        if key in measured:
            parts.append(f"max |{words} difference| {measured[key]:.3f}")
    return f"int8 ({int8['scheme']}): {', '.join(parts)} on {measured['n']} inputs of {on}"


def _created(folders: list[Path]) -> str:
    """' (created folder X)' when writing an --out file made its missing folders."""
    return f" (created folder {folders[-1]})" if folders else ""


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
