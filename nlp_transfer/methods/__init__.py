"""Methods: how much of the pre-trained model trains. METHODS maps recipe `method.name` to a method."""

from __future__ import annotations

from nlp_transfer.methods.base import Method, parameter_counts
from nlp_transfer.methods.full import FullFineTuning

METHODS: dict[str, type[Method]] = {
    "full": FullFineTuning,
}

__all__ = ["METHODS", "Method", "parameter_counts"]
