"""Schema pieces every recipe section uses: strict, frozen models and the way a data split is named."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DataFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "text", "label_first", "conll", "hub"]
# One character between the fields of a csv/tsv line, e.g. ";" (European spreadsheets) or a tab.
Delimiter = Annotated[str, Field(min_length=1, max_length=1)]


class Strict(BaseModel):
    """Unknown fields are errors (a typo is caught, not ignored), and a validated recipe never changes: what a task
    resolves from the data travels in the prepared task, not back into the recipe (a resumed run compares them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile(Strict):
    path: str = Field(description="file, name under the data root, or hub dataset id")
    label: str | int | None = Field(
        None, description="one label for every row (e.g. plain-text files with one class per file)"
    )
    split: str | None = Field(None, description="split of a hub dataset (default: train / validation / test)")
    format: DataFormat | None = Field(None, description="this file's format (default: data.format)")
    delimiter: Delimiter | None = Field(None, description="this csv/tsv file's delimiter (default: data.delimiter)")
    max_samples: int | None = Field(
        None,
        gt=0,
        description="seeded random subset of this file; a file that sets it is left out of data.max_<split>_samples",
    )
    where: dict[str, str | int | float | bool] | None = Field(
        None,
        description="keep only the rows whose columns hold these values, e.g. {split: train} (EmoBank keeps its "
        "splits in one file)",
    )
    label_lines: str | None = Field(
        None,
        description="a file with one label per line for the rows of this one, in order (TweetEval's *_labels.txt "
        "beside *_text.txt); a path or a name under the data root",
    )


SplitSpec = str | DataFile | list[str | DataFile]
