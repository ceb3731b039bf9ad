"""The nlp-transfer command line: parse, delegate, report. No training logic lives here.

Bad input raises UserError; the CLI prints it as one line on stderr and exits with code 2 (--debug shows the
traceback). Ctrl-C exits with 130 and leaves the run folder marked interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from nlp_transfer import distributed
from nlp_transfer.assets import DATA_ROOT_ENV
from nlp_transfer.errors import UserError

app = typer.Typer(
    name="nlp-transfer",
    help="Transfer learning for NLP from one YAML recipe: fine-tune, evaluate, save, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

STATE: dict[str, Any] = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file, e.g. recipes/quickstart.yaml")]
OverrideOpt = Annotated[
    list[str] | None,
    typer.Option("--override", "-o", help="override a recipe field: -o train.learning_rate=3e-5 (repeatable)"),
]
OutputDirOpt = Annotated[Path | None, typer.Option("--output-dir", help="run folder (default from the recipe)")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="replace a run folder that already holds a run")]
RevisionOpt = Annotated[str | None, typer.Option("--revision", help="branch, tag or commit of a Hub repo id")]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help=f"folder for data names (default ${DATA_ROOT_ENV} or ../shared/data)"),
    ] = None,
) -> None:
    STATE["debug"] = debug
    if data_root is not None:
        os.environ[DATA_ROOT_ENV] = str(data_root)


def reports_errors(command: F) -> F:
    """UserError -> one line on stderr, exit 2; Ctrl-C -> exit 130. --debug re-raises for the traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as err:
            if STATE["debug"]:
                raise
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as err:
            if STATE["debug"]:
                raise
            told = getattr(err, "message", None)  # interruption.RunInterrupted: a checkpoint was saved
            typer.echo(
                f"interrupted: {told}"
                if told
                else "interrupted: the run folder is marked interrupted; nothing was marked complete",
                err=True,
            )
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@reports_errors
def run(
    recipe: Annotated[
        Path,
        typer.Argument(help="recipe YAML file; or, with --resume / --reproduce, a run folder (its recorded recipe)"),
    ],
    override: OverrideOpt = None,
    output_dir: OutputDirOpt = None,
    overwrite: OverwriteOpt = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="continue an unfinished run from its last good checkpoint (the run folder: --output-dir, "
            "output.dir, or the newest unfinished one of this recipe)",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="--resume even though the recipe changed")] = False,
    reproduce: Annotated[
        bool,
        typer.Option("--reproduce", help="train again from a run folder's recorded recipe and compare the metrics"),
    ] = False,
) -> None:
    """Train, evaluate and save: everything the recipe says, into one run folder."""
    from nlp_transfer.recipe import load_recipe

    if reproduce:
        if resume or override:
            raise UserError("--reproduce re-runs the recorded recipe as it was; drop --resume and -o")
        run_reproduction(recipe, output_dir)
        return
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite starts it again; choose one")
    if recipe.is_dir():
        if not resume:
            raise UserError(f"{recipe} is a folder; pass a recipe YAML file (a run folder only with --resume)")
        from nlp_transfer.resume import recorded_recipe

        loaded, output_dir = recorded_recipe(recipe, override), output_dir or recipe
    else:
        loaded = load_recipe(recipe, override)
    run_loaded(loaded, output_dir, overwrite, resume=resume, force=force)


def run_reproduction(run_dir: Path, output_dir: Path | None) -> None:
    from nlp_transfer.reproduce import reproduce

    _handle_signals()
    result, comparison = reproduce(run_dir, output_dir)
    typer.echo(f"reproduced {run_dir} in {result.run_dir}")
    typer.echo("\n".join(comparison))


@app.command()
@reports_errors
def adapt(
    recipe: RecipeArg,
    override: OverrideOpt = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="adapt folder (default <output.root>/<recipe>); finished stages are reused"),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="train every stage again, even those finished with the same inputs")
    ] = False,
) -> None:
    """Domain adaptation table: source-only, +continued pre-training, +self-training, both (as the recipe allows)."""
    from nlp_transfer.recipe import load_recipe

    run_adaptation(load_recipe(recipe, override), output_dir, overwrite, all_rows=True)


def run_adaptation(loaded: Any, output_dir: Path | None, overwrite: bool, all_rows: bool) -> None:
    from nlp_transfer.adapt.chain import AdaptOptions, chain_rows, run_rows
    from nlp_transfer.adapt.chain import output_dir as adapt_dir
    from nlp_transfer.adapt.table import save_table

    if loaded.recipe.adapt is None:
        raise UserError(f"{loaded.path}: no adapt section; add adapt: {{target: ..., stages: [...]}} (see recipes/)")
    signal.signal(signal.SIGTERM, _interrupt)  # a killed chain keeps its finished stages
    options = AdaptOptions(output_dir=output_dir, overwrite=overwrite)
    rows = run_rows(loaded, chain_rows(loaded.recipe.adapt, all_rows), options)
    out = adapt_dir(loaded, options)
    table = save_table(out, rows)
    typer.echo("\n" + table)
    typer.echo(f"saved {out / 'adapt_table.md'} and adapt_table.json; models: {out / 'stages'}")
    typer.echo(f'predict with the last row\'s model: nlp-transfer predict {rows[-1]["model"]} "your text here"')


def run_loaded(
    loaded: Any, output_dir: Path | None, overwrite: bool, resume: bool = False, force: bool = False
) -> None:
    """Run a loaded recipe and print the summary (what `run` and `probe` share)."""
    if loaded.recipe.adapt is not None:  # a multi-stage recipe: its own chain of stages, one table row
        # Resuming is what a chain does anyway: finished stages are reused, a cut-short one continues.
        run_adaptation(loaded, output_dir, overwrite, all_rows=False)
        return
    from nlp_transfer.pipeline import RunOptions
    from nlp_transfer.pipeline import run as run_pipeline
    from nlp_transfer.summary import print_summary

    _handle_signals()
    options = RunOptions(output_dir=output_dir, overwrite=overwrite, resume=resume, force=force)
    result = run_pipeline(loaded, options)
    if distributed.is_main():  # one summary, not one per process
        print_summary(result)


def _handle_signals() -> None:
    """Ctrl-C and SIGTERM: during training, a checkpoint and a clean stop; elsewhere, stop at once (interruption.py).
    Either way the run folder is marked interrupted."""
    from nlp_transfer.interruption import on_signal

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


@app.command()
@reports_errors
def probe(
    recipe: RecipeArg,
    override: OverrideOpt = None,
    freeze_encoder: Annotated[
        bool,
        typer.Option(
            "--freeze-encoder/--no-freeze-encoder",
            help="a probe trains only the head on the frozen encoder (always on)",
        ),
    ] = True,
    pooling: Annotated[str, typer.Option(help="native (the model's own), cls, mean or last (GPT-2's own)")] = "native",
    layer: Annotated[int, typer.Option(help="hidden layer to pool: -1 = last, 0 = embeddings")] = -1,
    learning_rate: Annotated[
        float,
        typer.Option(help="the head's learning rate (a head on frozen features wants larger steps than fine-tuning)"),
    ] = 1e-3,
    cache_features: Annotated[
        bool,
        typer.Option("--cache-features/--no-cache-features", help="encode each example once and train on the cache"),
    ] = True,
    output_dir: OutputDirOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run any recipe as a frozen-encoder probe: only the task head trains (replaces the recipe's method)."""
    if not freeze_encoder:
        raise UserError("probe --no-freeze-encoder: a probe freezes the encoder; use `run` with method full or lora")
    method = {
        "name": "probe",
        "pooling": pooling,
        "layer": layer,
        "cache_features": cache_features,
        "learning_rate": learning_rate,
    }
    run_with_method(recipe, override, method, output_dir, overwrite, suffix="-probe")


@app.command()
@reports_errors
def compare(
    recipe: RecipeArg,
    methods: Annotated[
        str, typer.Option("--methods", help="methods to compare, comma-separated: scratch,probe,lora,full")
    ] = "scratch,probe,lora,full",
    train_sizes: Annotated[
        str | None,
        typer.Option("--train-sizes", help="labelled training examples per run, e.g. 100,1000,10000 (default: all)"),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="runs per cell: seeds train.seed, +1, ...")] = 1,
    override: OverrideOpt = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="compare folder (default <output.root>/compare-<recipe>-<time>); resumable"),
    ] = None,
    keep_runs: Annotated[
        bool, typer.Option("--keep-runs", help="keep every run folder (each holds a model; they fill the disk)")
    ] = False,
) -> None:
    """Methods x training-set sizes x seeds on one recipe: a markdown table and a learning-curve PNG."""
    from nlp_transfer.compare import CompareOptions, parse_methods, parse_train_sizes, run_compare
    from nlp_transfer.recipe import load_recipe

    options = CompareOptions(
        methods=parse_methods(methods),
        train_sizes=parse_train_sizes(train_sizes),
        seeds=seeds,
        output_dir=output_dir,
        keep_runs=keep_runs,
    )
    loaded = load_recipe(recipe, override)
    signal.signal(signal.SIGTERM, _interrupt)  # a killed compare keeps its finished cells, like Ctrl-C
    run_compare(loaded, options)


def run_with_method(
    recipe: Path,
    override: list[str] | None,
    method: dict[str, Any],
    output_dir: Path | None,
    overwrite: bool,
    suffix: str,
) -> None:
    """`run`, with the recipe's method section replaced (the run folder name says so)."""
    from nlp_transfer.recipe import load_recipe, replace_method

    run_loaded(replace_method(load_recipe(recipe, override), method, suffix), output_dir, overwrite)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@app.command()
@reports_errors
def validate(recipe: RecipeArg, override: OverrideOpt = None) -> None:
    """Check a recipe against the schema without running it."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.training import training_arguments

    loaded = load_recipe(recipe, override)
    training_arguments(loaded.recipe.train, Path("unused"))  # train.trainer passthrough keys are checked here
    typer.echo(
        f"{recipe}: valid ({loaded.recipe.task.name} with {loaded.recipe.method.name} on {loaded.recipe.model.name})"
    )


@app.command()
@reports_errors
def show(recipe: RecipeArg, override: OverrideOpt = None) -> None:
    """Print the recipe with every default filled in (what a run records as recipe.resolved.yaml)."""
    from nlp_transfer.recipe import load_recipe

    typer.echo(load_recipe(recipe, override).to_yaml(), nl=False)


@app.command()
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
    from nlp_transfer.predict import PredictInputs, open_predictor
    from nlp_transfer.runfolder import write_atomically

    predictor = open_predictor(model, batch_size=batch_size, revision=revision)
    inputs = predictor.read(PredictInputs(list(texts or []), file, question, context))
    lines = (json.dumps(row, ensure_ascii=False) for row in predictor.predict(inputs))
    if out is None:
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    write_atomically(out, "".join(line + "\n" for line in lines))
    typer.echo(f"wrote {len(inputs)} predictions to {out}", err=True)


@app.command()
@reports_errors
def cluster(
    model: Annotated[str, typer.Argument(help="encoder: hub id, model folder, or a complete run folder")],
    data: Annotated[str, typer.Argument(help="csv/tsv/jsonl/json/txt file, or a name under the data root")],
    k: Annotated[int | None, typer.Option("--k", help="number of clusters (default: distinct --label values)")] = None,
    text: Annotated[str, typer.Option("--text", help="column holding the text")] = "text",
    label: Annotated[
        str | None, typer.Option("--label", help="column of true labels: scores the clusters (never used to fit)")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="names for a header-less csv/tsv, e.g. text,label (AG News)")
    ] = None,
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="truncate texts to this many tokens")] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    examples: Annotated[int, typer.Option("--examples", min=1, help="texts closest to each centroid to show")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="fixes the subset, k-means and the silhouette sample")] = 42,
    out: Annotated[Path | None, typer.Option("--out", help="folder (default runs/cluster-<data>-<time>)")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="write into a non-empty --out")] = False,
) -> None:
    """Embed a corpus with an encoder (mean pooling) and cluster it with k-means; with --label, score the clusters."""
    from nlp_transfer.cluster import ClusterOptions, run_cluster, summary_line

    names = _column_names(columns)
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


@app.command()
@reports_errors
def evaluate(
    model: Annotated[str, typer.Argument(help="a complete run folder, a copy of one (export, download), or a repo id")],
    data: Annotated[
        str, typer.Option("--data", help="labelled csv/tsv/jsonl/json (SQuAD json for QA), a name under the data root")
    ],
    text: Annotated[str | None, typer.Option("--text", help="text column (default: the one trained on)")] = None,
    text_pair: Annotated[str | None, typer.Option("--text-pair", help="second text column of a pair task")] = None,
    label: Annotated[str | None, typer.Option("--label", help="label column (default: the one trained on)")] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="names for a header-less csv/tsv, e.g. label,sentence")
    ] = None,
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="seeded random subset")] = None,
    seed: Annotated[int, typer.Option("--seed", help="picks the --max-samples subset")] = 42,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    revision: RevisionOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the metrics as JSON here as well")] = None,
) -> None:
    """The task's metrics for a trained model on a labelled file: JSON on stdout, a summary line on stderr."""
    from nlp_transfer.evaluation import EvaluateOptions, evaluate_model, summary
    from nlp_transfer.runfolder import write_atomically

    options = EvaluateOptions(
        model=model,
        data=data,
        revision=revision,
        columns=_column_names(columns),
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


def _column_names(columns: str | None) -> list[str] | None:
    """--columns text,label -> ["text", "label"]: names for the fields of a csv/tsv without a header row."""
    return [name.strip() for name in columns.split(",")] if columns else None


@app.command()
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
    from nlp_transfer.hub import PushOptions, check_repo_id, describe, plan_push
    from nlp_transfer.hub import push as push_plan

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


@app.command()
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
    from nlp_transfer.export import ExportOptions
    from nlp_transfer.export import export as export_model

    result = export_model(model, ExportOptions(out=out, merge=merge, onnx=onnx, overwrite=overwrite))
    checks = [
        f"{name}: max |logit difference| {result.record[name]['max_abs_logit_difference']:.1e}"
        for name in ("merge", "onnx")
        if name in result.record
    ]
    typer.echo(f"exported {model} to {result.folder}" + (f" ({'; '.join(checks)})" if checks else ""))


if __name__ == "__main__":
    app()
