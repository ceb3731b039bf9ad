"""Schema pieces shared by the recipe (recipe.py) and its domain-adaptation section (adapt/spec.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataFile(Strict):
    path: str = Field(description="file, name under the data root, or hub dataset id")
    label: str | int | None = Field(
        None, description="one label for every row (e.g. plain-text files with one class per file)"
    )
    split: str | None = Field(None, description="split of a hub dataset (default: train / validation / test)")


SplitSpec = str | DataFile | list[str | DataFile]
