"""Commands that read a trained model (a run folder, a copy of one, or a pushed repo id): predict, evaluate,
export, push; and cluster, which embeds a corpus with any encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from nlp_transfer.cli.app import ColumnsOpt, RevisionOpt, column_names, reports_errors


@reports_errors
def predict(
    model: Annotated[str, typer.Argument(help="a complete run folder, a copy of one (export, download), or a repo id")],
    texts: Annotated[list[str] | None, typer.Argument(help="texts to classify")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help=".txt (one text per line) or .jsonl with 'text'; for QA .jsonl with question, context"
        ),
    ] = None,
    question: Annotated[str | None, typer.Option("--question", help="QA: the question")] = None,
    context: Annotated[str | None, typer.Option("--context", help="QA: the passage that holds the answer")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write JSONL here instead of stdout")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    revision: RevisionOpt = None,
) -> None:
    """Predictions as JSON lines: label and probability for each text, or answer, score and offsets (QA)."""
    from nlp_transfer.core.files import write_atomically
    from nlp_transfer.share.predict import PredictInputs, open_predictor

    predictor = open_predictor(model, batch_size=batch_size, revision=revision)
    inputs = predictor.read(PredictInputs(list(texts or []), file, question, context))
    lines = (json.dumps(row, ensure_ascii=False) for row in predictor.predict(inputs))
    if out is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    write_atomically(out, "".join(line + "\n" for line in lines))
    typer.echo(f"wrote {len(inputs)} predictions to {out}", err=True)


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
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="truncate texts to this many tokens")] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    examples: Annotated[int, typer.Option("--examples", min=1, help="texts closest to each centroid to show")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="fixes the subset, k-means and the silhouette sample")] = 42,
    out: Annotated[Path | None, typer.Option("--out", help="folder (default runs/cluster-<data>-<time>)")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="write into a non-empty --out")] = False,
) -> None:
    """Embed a corpus with an encoder (mean pooling) and cluster it with k-means; with --label, score the clusters."""
    from nlp_transfer.studies.cluster import ClusterOptions, run_cluster, summary_line

    names = column_names(columns)
    options = ClusterOptions(
        model=model,
        data=data,
        k=k,
        text=text,
        label=label,
        columns=names,
        max_samples=max_samples,
        max_length=max_length,
        batch_size=batch_size,
        examples=examples,
        seed=seed,
        out=out,
        overwrite=overwrite,
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
    columns: ColumnsOpt = None,
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    seed: Annotated[int, typer.Option("--seed", help="picks the --max-samples subset")] = 42,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    revision: RevisionOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the metrics as JSON here as well")] = None,
) -> None:
    """The task's metrics for a trained model on a labelled file: JSON on stdout, a summary line on stderr."""
    from nlp_transfer.core.files import write_atomically
    from nlp_transfer.share.evaluate import EvaluateOptions, evaluate_model, summary

    options = EvaluateOptions(
        model=model,
        data=data,
        revision=revision,
        columns=column_names(columns),
        text=text,
        text_pair=text_pair,
        label=label,
        max_samples=max_samples,
        seed=seed,
        batch_size=batch_size,
    )
    result = evaluate_model(options)
    text_out = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text_out)
    if out is not None:
        write_atomically(out, text_out)
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
    from nlp_transfer.share.hub import PushOptions, check_repo_id, describe, plan_push
    from nlp_transfer.share.hub import push as push_plan

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
    out: Annotated[Path, typer.Option("--out", help="folder to write (must not hold anything but an earlier export)")],
    merge: Annotated[
        bool, typer.Option("--merge", help="LoRA: fold the adapter into the base weights (a plain transformers model)")
    ] = False,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="also write model.onnx, checked against PyTorch (needs nlp-transfer[onnx])")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an earlier export in --out")] = False,
) -> None:
    """A self-contained copy of a trained model to ship: the files push uploads, optionally merged or ONNX."""
    from nlp_transfer.share.export import ExportOptions
    from nlp_transfer.share.export import export as export_model

    result = export_model(model, ExportOptions(out=out, merge=merge, onnx=onnx, overwrite=overwrite))
    checks = [
        f"{name}: max |logit difference| {result.record[name]['max_abs_logit_difference']:.1e}"
        for name in ("merge", "onnx")
        if name in result.record
    ]
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
    from nlp_transfer.run.report import rebuild

    typer.echo(f"wrote {rebuild(list(runs), output_dir)}")
