"""What a run used, for reproducing it: library versions, seed, data file hashes, model source, machine."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import torch

from nlp_transfer import __version__
from nlp_transfer.core.allocator import allocator_in_use
from nlp_transfer.data.assets import Asset
from nlp_transfer.data.loading import LoadedData
from nlp_transfer.recipe import LoadedRecipe

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "peft", "tokenizers", "pydantic", "numpy")


def environment_record(
    seed: int, model: Asset, data: LoadedData, notes: list[str], loaded: LoadedRecipe
) -> dict[str, Any]:
    return {
        # Where the recipe came from: relative data paths resolve there when the run is resumed or reproduced.
        "recipe": {"file": str(loaded.path.resolve()), "name": loaded.name},
        "nlp_transfer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": {name: library_version(name) for name in LIBRARIES},
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "processes": int(os.environ.get("WORLD_SIZE", "1")),  # > 1 under accelerate launch / torchrun
        "allocator": allocator_in_use(),  # speed only: the same weights with either
        "seed": seed,
        "data_order_seed": seed,
        "model": {
            "reference": model.reference,
            "location": model.location,
            "source": model.source,
            "hub_id": model.hub_id,  # the hub id a local copy mirrors, when known
        },
        "data_sources": data.sources,
        "data_file_sha256": data.file_hashes,
        "data_notes": notes,  # subsets, skipped rows, held-out splits: what the model card reports
    }


def library_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
