"""Label names given in a file (task.labels_file): one name per line in id order (GoEmotions' emotions.txt), or
`id<TAB>name` lines (TweetEval's mapping.txt)."""

from __future__ import annotations

from pathlib import Path

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.data.readers import read_text


def declared_names(task: object, data: LoadedData) -> list[str] | None:
    """task.labels, or the names in task.labels_file (read and recorded with its sha256), or None."""
    labels = getattr(task, "labels", None)
    if labels is not None:
        return list(labels)
    reference = getattr(task, "labels_file", None)
    if reference is None:
        return None
    return read_label_names(data.task_file(reference, "task.labels_file"), "task.labels_file")


def read_label_names(path: Path, field: str) -> list[str]:
    lines = [line.strip() for line in read_text(path, "utf-8", field)[0].splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{field}: {path} is empty; write one label name per line (in id order)")
    names = _by_id(lines, path, field) or lines
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"{field}: {path} names {', '.join(map(repr, repeated))} more than once; each label once")
    return names


def _by_id(lines: list[str], path: Path, field: str) -> list[str] | None:
    """`id<TAB>name` lines -> names in id order; None when the lines are plain names."""
    split = [line.split("\t", 1) for line in lines]
    if not all(len(parts) == 2 and parts[0].strip().isdigit() for parts in split):
        return None
    ids = [int(parts[0]) for parts in split]
    if sorted(ids) != list(range(len(ids))):
        raise UserError(
            f"{field}: {path} gives ids {', '.join(map(str, sorted(ids)))}; the ids must be 0 to {len(ids) - 1}, "
            "each once (or write one name per line, in id order)"
        )
    by_id = dict(zip(ids, (parts[1].strip() for parts in split), strict=True))
    return [by_id[i] for i in range(len(ids))]
