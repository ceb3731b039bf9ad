"""The proposed recipe as YAML a person reads: a header saying what the data is and how to run it, each section
in the order users write them, and a comment beside every value init chose from the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nlp_transfer.init.defaults import Proposal

COMMENT_COLUMN = 44


def render(proposal: Proposal, options: Any, out: Path) -> str:
    task = proposal.task
    what = {
        "classification": "single-label classification",
        "multi_label": "multi-label classification",
        "regression": "regression",
        "qa": "extractive question answering",
        "token_classification": "token classification (a tag per word: named entities)",
    }[task["name"]]
    lines = [
        f"# {what.capitalize()} on {', '.join(options.data)}, with {options.model}.",
        f"# Written by `{options.command or 'nlp-transfer init'}`;",
        "# the values with a comment were chosen from the data: check them.",
        *[f"# Data: {line}" for line in proposal.about],
        f"# Run: nlp-transfer run {out}",
    ]
    sections: list[tuple[str, dict[str, Any]]] = [
        ("model", {"name": options.model}),
        ("task", task),
        ("method", {"name": "full"}),
        ("data", proposal.data),
        ("train", proposal.train),
    ]
    for section, values in sections:
        lines.append(f"{section}:")
        for key, value in values.items():
            lines.append(_line(f"  {key}: {_yaml(value)}", proposal.comments.get(f"{section}.{key}")))
    return "\n".join(lines) + "\n"


def _line(text: str, comment: str | None) -> str:
    if not comment:
        return text
    return f"{text.ljust(COMMENT_COLUMN)}  # {comment}"


def _yaml(value: Any) -> str:
    """One value in YAML flow style on one line (`{path: x, where: {split: train}}`)."""
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False, allow_unicode=True)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()
