"""The nlp-transfer command line: parse, delegate, report. No training logic lives here.

Bad input raises UserError; every command prints it as one line on stderr and exits with code 2 (--debug shows the
traceback). Ctrl-C exits with 130 and leaves the run folder marked interrupted. The commands are in
train_commands.py (recipes -> runs and studies), model_commands.py (trained models -> predictions, metrics,
reports) and ship_commands.py (trained models sent on: exports, the Hub, a server).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nlp_transfer import __version__
from nlp_transfer.cli import model_commands, ship_commands, train_commands
from nlp_transfer.cli.app import STATE, app
from nlp_transfer.data.assets import DATA_ROOT_ENV


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"nlp-transfer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="print the version and exit", is_eager=True, callback=_print_version)
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help=f"folder for data names (default ${DATA_ROOT_ENV} or ../shared/data)"),
    ] = None,
) -> None:
    STATE["debug"] = debug
    if data_root is not None:
        os.environ[DATA_ROOT_ENV] = str(data_root)


# The command table is the CLI: `nlp-transfer --help` lists the commands in this order.
COMMANDS = (
    train_commands.init,
    train_commands.run,
    train_commands.probe,
    train_commands.compare,
    train_commands.tune,
    train_commands.adapt,
    train_commands.validate,
    train_commands.show,
    model_commands.predict,
    model_commands.evaluate,
    ship_commands.export,
    ship_commands.push,
    ship_commands.serve,
    model_commands.cluster,
    model_commands.report,
)
for command in COMMANDS:
    app.command()(command)

__all__ = ["COMMANDS", "app"]
