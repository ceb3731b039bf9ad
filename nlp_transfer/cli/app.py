"""The typer app, the option types commands share, and the one place errors become exit codes."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer

from nlp_transfer.core.errors import UserError

app = typer.Typer(
    name="nlp-transfer",
    help="Transfer learning for NLP from one YAML recipe: fine-tune, evaluate, save, predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: `--file PATH`, flags without a type placeholder, no box drawing
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
ColumnsOpt = Annotated[
    str | None, typer.Option("--columns", help="names for a header-less csv/tsv, e.g. text,label (AG News)")
]
DelimiterOpt = Annotated[
    str | None,
    typer.Option("--delimiter", help="csv/tsv field delimiter, one character, e.g. ';' (default: ',' csv, tab tsv)"),
]
EncodingOpt = Annotated[str, typer.Option("--encoding", help="text encoding of the file (e.g. latin-1, utf-16)")]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 where the hardware does it natively, fp16 on older GPUs, else fp32), fp32, bf16 or fp16",
    ),
]


def _left_to_rank_0(err: UserError) -> bool:
    """Under accelerate launch an error every process raised together (core.distributed.CommonError) is printed once,
    by rank 0. Read from the environment first: a single process never imports torch just to print an error."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from nlp_transfer.core.distributed import CommonError, launch_rank

    return isinstance(err, CommonError) and launch_rank() != 0


def reports_errors(command: F) -> F:
    """UserError -> one line on stderr, exit 2; Ctrl-C -> exit 130; any other error is a bug in nlp-transfer -> one
    line asking for a report, exit 1. --debug re-raises for the traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as err:
            if STATE["debug"]:
                raise
            if not _left_to_rank_0(err):
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
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # typer's own exits and usage errors
        except Exception as err:  # not the user's input: a bug, said as one (never "check your file")
            if STATE["debug"]:
                raise
            typer.echo(
                f"error: {type(err).__name__}: {_first_line(err)}. This is a bug in nlp-transfer: please report it "
                "with the output of the same command run with --debug (which shows the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def delimiter_option(delimiter: str | None) -> str | None:
    """--delimiter as one character: `\t` and `tab` spell a tab (a shell passes them as written)."""
    if delimiter is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)
    if len(value) != 1:
        raise UserError(f"--delimiter {delimiter!r}: one character separates the fields, e.g. --delimiter ';'")
    return value


def column_names(columns: str | None) -> list[str] | None:
    """--columns text,label -> ["text", "label"]: names for the fields of a csv/tsv without a header row."""
    return [name.strip() for name in columns.split(",")] if columns else None


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else "(no message)"
