"""Operations on a split's rows, apart from reading them: the origin column that follows each row back to its file
and line, `where` filters, seeded class-balanced subsets, and one dataset from a split's several files.
"""

from __future__ import annotations

from typing import Any

import datasets

from nlp_transfer.core.errors import UserError
from nlp_transfer.core.quiet import quiet_libraries

# A column carried through reading, holding out and subsetting, then taken off into LoadedData.origins: which file
# and which of its rows each row of a split is (packed in one integer: file number * ORIGIN_FILES + row).
ORIGIN = "__nlp_transfer_origin__"
ORIGIN_FILES = 2**40


def selected(rows: datasets.Dataset, where: dict[str, Any], field: str) -> datasets.Dataset:
    """The rows whose columns hold the given values (compared as text: 1 matches "1")."""
    for column in where:
        if column not in rows.column_names:
            raise UserError(
                f"{field}: where names column '{column}', which the file does not have; columns are: "
                f"{', '.join(c for c in rows.column_names if c != ORIGIN)}"
            )
    wanted = {column: str(value) for column, value in where.items()}
    values = {column: rows[column] for column in wanted}
    keep = [i for i in range(len(rows)) if all(str(values[c][i]) == v for c, v in wanted.items())]
    if not keep:
        shown = ", ".join(f"{c}={v}" for c, v in wanted.items())
        raise UserError(f"{field}: no row has {shown}; check the values of where")
    return rows.select(keep)


def per_class(
    rows: datasets.Dataset, label_column: str, per_class: int, seed: int, notes: list[str]
) -> datasets.Dataset:
    """A seeded class-balanced subset: the first `per_class` rows of each label in a seeded shuffle (a few-shot set,
    as SetFit samples them). Rows without a label are left out; a label with fewer rows gives all it has."""
    if label_column not in rows.column_names:
        return rows  # the task names the missing column, with the fix
    shuffled = rows.shuffle(seed=seed)
    taken: dict[str, list[int]] = {}
    for index, value in enumerate(shuffled[label_column]):
        if value is None or str(value).strip() == "":
            continue
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()  # 1.0 is 1
        chosen = taken.setdefault(key, [])
        if len(chosen) < per_class:
            chosen.append(index)
    short = {k: len(v) for k, v in taken.items() if len(v) < per_class}
    notes.append(
        f"train: {per_class} rows of each of {len(taken)} labels, a seeded class-balanced subset of {len(rows)} rows "
        f"(seed {seed})" + (f"; fewer rows than that for {short}" if short else "")
    )
    return shuffled.select(sorted(i for chosen in taken.values() for i in chosen))


def joined(parts: list[datasets.Dataset], field: str) -> datasets.Dataset:
    """One dataset from a split's files. Files with different columns keep the columns they share (cast to the
    first file's types), which are the only ones a task could read from every file."""
    if len(parts) == 1:
        return parts[0]
    shared = [c for c in parts[0].column_names if all(c in p.column_names for p in parts[1:])]
    if shared == [ORIGIN] or not shared:
        raise UserError(f"{field}: its files share no column name; give every file the same text and label columns")
    named = ", ".join(c for c in shared if c != ORIGIN)
    first = parts[0].select_columns(shared)
    aligned = [first]
    for part in parts[1:]:
        part = part.select_columns(shared)
        try:
            with quiet_libraries():
                aligned.append(part.cast(first.features))
        except (ValueError, TypeError) as err:
            raise UserError(
                f"{field}: a file's columns ({named}) hold other kinds of values than the first file's "
                f"({err}); make the label columns agree (all class names, or all integer ids)"
            ) from err
    return datasets.concatenate_datasets(aligned)
