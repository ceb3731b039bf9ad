"""Commands that read a trained model (a run folder, a copy of one, or a pushed repo id) and answer: predict,
evaluate, report; and cluster, which embeds a corpus with any encoder. Sending a model on (export, push, serve) is in
ship_commands.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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


def _created(folders: list[Path]) -> str:
    """' (created folder X)' when writing an --out file made its missing folders."""
    return f" (created folder {folders[-1]})" if folders else ""
