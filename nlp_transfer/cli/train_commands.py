"""Commands that read a recipe: run (and probe), compare, tune, adapt, validate, show; and init, which writes one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nlp_transfer.cli.app import (
    ColumnsOpt,
    DelimiterOpt,
    OutputDirOpt,
    OverrideOpt,
    OverwriteOpt,
    RecipeArg,
    column_names,
    delimiter_option,
    reports_errors,
)
from nlp_transfer.core.errors import UserError


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

    if (resume or reproduce) and not recipe.exists():
        raise UserError(
            f"{recipe}: no such run folder or recipe file; pass the run folder to "
            + ("reproduce (see runs/)" if reproduce else "continue (or the recipe file with --output-dir RUN_DIR)")
        )
    if reproduce:
        if resume or override:
            raise UserError("--reproduce re-runs the recorded recipe as it was; drop --resume and -o")
        _reproduce(recipe, output_dir)
        return
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite starts it again; choose one")
    if recipe.is_dir():
        if not resume:
            raise UserError(f"{recipe} is a folder; pass a recipe YAML file (a run folder only with --resume)")
        from nlp_transfer.train.resume import recorded_recipe

        loaded, output_dir = recorded_recipe(recipe, override), output_dir or recipe
    else:
        loaded = load_recipe(recipe, override)
    run_loaded(loaded, output_dir, overwrite, resume=resume, force=force)


def _reproduce(run_dir: Path, output_dir: Path | None) -> None:
    from nlp_transfer.train.interruption import install_handlers
    from nlp_transfer.train.reproduce import reproduce

    install_handlers()
    result, comparison = reproduce(run_dir, output_dir)
    typer.echo(f"reproduced {run_dir} in {result.run_dir}")
    typer.echo("\n".join(comparison))


def run_loaded(
    loaded: Any, output_dir: Path | None, overwrite: bool, resume: bool = False, force: bool = False
) -> None:
    """Run a loaded recipe and print the summary (what `run` and `probe` share)."""
    from nlp_transfer.train.interruption import install_handlers

    install_handlers()
    if loaded.recipe.adapt is not None:  # a multi-stage recipe: its own chain of stages, one table row
        # Resuming is what a chain does anyway: finished stages are reused, a cut-short one continues.
        _adaptation(loaded, output_dir, overwrite, all_rows=False)
        return
    from nlp_transfer.core import distributed
    from nlp_transfer.report.summary import print_summary
    from nlp_transfer.train.pipeline import RunOptions
    from nlp_transfer.train.pipeline import run as run_pipeline

    options = RunOptions(output_dir=output_dir, overwrite=overwrite, resume=resume, force=force)
    result = run_pipeline(loaded, options)
    if distributed.is_main():  # one summary, not one per process
        print_summary(result)


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
    from nlp_transfer.train.interruption import install_handlers

    install_handlers()
    _adaptation(load_recipe(recipe, override), output_dir, overwrite, all_rows=True)


def _adaptation(loaded: Any, output_dir: Path | None, overwrite: bool, all_rows: bool) -> None:
    from nlp_transfer.studies.adapt import AdaptOptions, run_adaptation

    options = AdaptOptions(
        output_dir=output_dir,
        overwrite=overwrite,
        on_warning=lambda message: typer.echo(f"warning: {message}", err=True),
    )
    result = run_adaptation(loaded, options, all_rows=all_rows)
    typer.echo("\n" + result.table)
    typer.echo(f"saved {result.folder / 'adapt_table.md'} and adapt_table.json; models: {result.folder / 'stages'}")
    typer.echo(f'predict with the last row\'s model: nlp-transfer predict {result.rows[-1]["model"]} "your text here"')


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
    from nlp_transfer.recipe import load_recipe, replace_method

    if not freeze_encoder:
        raise UserError("probe --no-freeze-encoder: a probe freezes the encoder; use `run` with method full or lora")
    method = {
        "name": "probe",
        "pooling": pooling,
        "layer": layer,
        "cache_features": cache_features,
        "learning_rate": learning_rate,
    }
    run_loaded(replace_method(load_recipe(recipe, override), method, "-probe"), output_dir, overwrite)


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
    per_class: Annotated[
        bool,
        typer.Option("--per-class", help="--train-sizes count examples of each label: class-balanced few-shot sets"),
    ] = False,
) -> None:
    """Methods x training-set sizes x seeds on one recipe: a markdown table and a learning-curve PNG."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.compare import CompareOptions, parse_methods, parse_train_sizes, run_compare
    from nlp_transfer.train.interruption import install_handlers

    options = CompareOptions(
        methods=parse_methods(methods),
        train_sizes=parse_train_sizes(train_sizes),
        seeds=seeds,
        output_dir=output_dir,
        keep_runs=keep_runs,
        per_class=per_class,
    )
    loaded = load_recipe(recipe, override)
    install_handlers()  # a stopped compare keeps its finished cells
    run_compare(loaded, options)


@reports_errors
def tune(
    recipe: RecipeArg,
    override: OverrideOpt = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="tune folder (default <output.root>/tune-<recipe>); the same folder resumes"),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="database URL of a study shared by several workers (postgresql://..., mysql+pymysql://...); "
            "default: SQLite in the tune folder",
        ),
    ] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="default tune-<recipe>")] = None,
) -> None:
    """Search the recipe's tune.space with Optuna: trials table, best recipe, best run folder, figures."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.studies.tune import TuneOptions, run_tune
    from nlp_transfer.train.interruption import install_handlers

    loaded = load_recipe(recipe, override)
    install_handlers()  # a stopped trial is queued again; the study keeps every finished one
    result = run_tune(loaded, TuneOptions(output_dir=output_dir, storage=storage, study_name=study_name))
    folder, best = result.folder, result.record["best"]
    typer.echo((folder / "trials.md").read_text(encoding="utf-8"))
    if best is not None and best.get("confirmation") is not None:  # the best recipe is written beside its verdict
        typer.echo(f"verdict: {best['confirmation']['verdict']}")
        typer.echo(f"best settings: {folder / 'best_recipe.yaml'} (nlp-transfer run {folder / 'best_recipe.yaml'})")
    figures = ", ".join(str(folder / name) for name in result.record["figures"])
    typer.echo(f"wrote {folder / 'trials.md'}, trials.json" + (f", {figures}" if figures else ""))


@reports_errors
def validate(recipe: RecipeArg, override: OverrideOpt = None) -> None:
    """Check a recipe against the schema without running it."""
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.arguments import training_arguments

    loaded = load_recipe(recipe, override)
    training_arguments(loaded.recipe.train, Path("unused"))  # train.trainer passthrough keys are checked here
    if loaded.recipe.tune is not None:  # every bound and choice of the search space, built into the recipe
        from nlp_transfer.studies.tune.space import SearchSpace

        SearchSpace(loaded).check()
    typer.echo(
        f"{recipe}: valid ({loaded.recipe.task.name} with {loaded.recipe.method.name} on {loaded.recipe.model.name})"
    )


@reports_errors
def show(recipe: RecipeArg, override: OverrideOpt = None) -> None:
    """Print the recipe with every default filled in (what a run records as recipe.resolved.yaml)."""
    from nlp_transfer.recipe import load_recipe

    typer.echo(load_recipe(recipe, override).to_yaml(), nl=False)


@reports_errors
def init(
    data: Annotated[
        list[str],
        typer.Argument(help="a labelled csv/tsv/jsonl/json/parquet/txt file (or one plain-text file per class)"),
    ],
    model: Annotated[
        str, typer.Option("--model", help="hub id or model folder")
    ] = "sentence-transformers/all-MiniLM-L6-v2",
    out: Annotated[Path | None, typer.Option("--out", help="recipe to write (never overwritten)")] = None,
    columns: ColumnsOpt = None,
    text: Annotated[str | None, typer.Option("--text", help="the text column, when init cannot tell")] = None,
    text_pair: Annotated[str | None, typer.Option("--text-pair", help="the second text of a pair")] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="the label column; several, comma-separated, for one model")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="classification, multi_label, regression or qa, instead of the detected"),
    ] = None,
    label_lines: Annotated[
        str | None, typer.Option("--label-lines", help="a plain-text file's labels, one per line, in this file")
    ] = None,
    delimiter: DelimiterOpt = None,
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="text encoding of the file (default: utf-8 if it reads so, else latin-1)"),
    ] = None,
) -> None:
    """Write a commented recipe for a data file: columns, task and label shape, and defaults for its size."""
    import sys

    from nlp_transfer.data.assets import default_data_root
    from nlp_transfer.init import InitOptions, init_recipe

    options = InitOptions(
        data=data,
        model=model,
        out=out,
        columns=column_names(columns),
        text=text,
        text_pair=text_pair,
        label=[name.strip() for name in label.split(",")] if label else None,
        task=task,
        label_lines=label_lines,
        delimiter=delimiter_option(delimiter),
        encoding=encoding,
        data_root=default_data_root(),
        command="nlp-transfer init " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "",
    )
    result = init_recipe(options)
    for note in result.notes:
        typer.echo(f"  {note}")
    typer.echo(f"wrote {result.path}; check it, then: nlp-transfer run {result.path}")
