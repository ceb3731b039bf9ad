"""`nlp-transfer init DATA_FILE`: a commented recipe from a data file, so a user with a CSV need not learn the
schema first.

It reads the file as a run would (profile.py), proposes the text (and pair) column and the label column, detects the
label shape (single-label with N classes and their balance, multi-label, numeric), and picks defaults for the data:
epochs and batch size that give a small set enough optimizer steps, the learning rate the model's size wants, class
weights when classes are skewed, windows when texts are longer than the window, the dev/test files or split column
beside the data. Where two readings are plausible it stops and asks for a flag (--text, --label, --columns, --task);
the recipe is validated before it is written, and an existing file is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.files import check_output_file
from nlp_transfer.init.profile import Profile, Source, headerless_names, inspect_columns, read_rows, read_source
from nlp_transfer.init.propose import propose
from nlp_transfer.init.render import render
from nlp_transfer.init.tokens import looks_tagged, token_proposal
from nlp_transfer.recipe import Recipe

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TASKS = ("classification", "multi_label", "regression", "qa", "token_classification")
MIN_ROWS = 10  # fewer cannot be split into training, eval and test rows


@dataclass
class InitOptions:
    data: list[str]  # one file; or one plain-text file per class
    model: str = DEFAULT_MODEL
    out: Path | None = None
    columns: list[str] | None = None  # names for a header-less csv/tsv
    delimiter: str | None = None  # a csv/tsv's field delimiter (default: ',' for csv, tab for tsv)
    encoding: str | None = None  # the file's text encoding (default: utf-8 when it reads as such, else latin-1)
    text: str | None = None
    text_pair: str | None = None
    label: list[str] | None = None  # one column, or several (0/1 per label, or several numeric targets)
    task: str | None = None  # classification, multi_label, regression, qa: instead of the detected shape
    label_lines: str | None = None  # a plain-text file's labels, one per line
    data_root: Path | None = None
    command: str = ""  # how init was called, for the recipe's header


@dataclass
class InitResult:
    path: Path
    notes: list[str]  # what was chosen and why, one line each


def init_recipe(options: InitOptions) -> InitResult:
    if options.task is not None and options.task not in TASKS:
        raise UserError(f"--task {options.task}: choose one of {', '.join(TASKS)}")
    out = options.out or Path(_default_name(options.data[0]))
    if out.exists():
        raise UserError(f"--out {out}: exists; init never overwrites a file (choose another --out or remove it)")
    check_output_file(out, "--out")  # a file above it or an unwritable place, before the data is read
    sources = [read_source(reference, options.data_root, options) for reference in options.data]
    if len(sources) > 1:
        _one_class_per_file(sources)
    rows = read_rows(sources, options.data_root, options.delimiter)
    guessed = headerless_names(sources[0], rows)
    if guessed is not None:  # no header row: the first row is data, read again under names init gives
        sources[0].columns = guessed
        rows = read_rows(sources, options.data_root, options.delimiter)
    if len(rows) < MIN_ROWS:
        raise UserError(
            f"DATA_FILE {options.data[0]}: {len(rows)} data row{'s' if len(rows) != 1 else ''}; init needs at least "
            f"{MIN_ROWS} labelled rows to propose training, eval and test splits (add rows, or write a recipe by hand)"
        )
    profile = Profile(sources, rows, inspect_columns(rows))
    proposal = token_proposal(profile, options) if looks_tagged(profile, options) else propose(profile, options)
    if guessed is not None:
        proposal.say(
            "data.columns", f"no header row: the columns are named {', '.join(guessed)} (or name them with --columns)"
        )
    text = render(proposal, options, out)
    # A proposal that does not validate is a bug in init, not the user's: it ends there, reported as a bug
    # (cli.app.reports_errors), before anything is written.
    Recipe.model_validate(yaml.safe_load(text))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("x", encoding="utf-8") as handle:  # "x": fails rather than overwrite a file made meanwhile
            handle.write(text)
    except FileExistsError as err:
        raise UserError(f"--out {out}: exists; init never overwrites a file") from err
    return InitResult(out, proposal.notes)


def _default_name(reference: str) -> str:
    path = Path(reference)
    return f"{path.parent.name}-{path.stem}.yaml" if path.parent.name else f"{path.stem}.yaml"


def _one_class_per_file(sources: list[Source]) -> None:
    """Several files: plain text, one class per file (rt_polarity's .pos and .neg); the class is the file's
    extension, or its name when the extension is .txt."""
    for source in sources:
        if source.format != "text":
            raise UserError(
                "DATA_FILE: several files are read as one class per file, so each must be plain text (one text per "
                f"line); {source.reference} is not. Give one table file instead"
            )
        source.label_lines = None
        suffix = source.path.suffix
        source.class_of_file = suffix.lstrip(".") if suffix not in ("", ".txt") else source.path.stem
    classes = [s.class_of_file for s in sources]
    if len(set(classes)) < len(classes):
        raise UserError(f"DATA_FILE: the files name the classes {classes}; each file must be a different class")
