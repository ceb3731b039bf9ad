"""Methods: how much of the pre-trained model trains. METHODS maps recipe `method.name` to a method; each says
which tasks it serves (`serves`), checked before anything loads."""

from __future__ import annotations

from nlp_transfer.methods.base import Method, Phase, PhaseContext, PhaseInputs, check_serves, parameter_counts
from nlp_transfer.methods.contrastive import Contrastive
from nlp_transfer.methods.full import FullFineTuning
from nlp_transfer.methods.lora import Lora
from nlp_transfer.methods.probe import Probe
from nlp_transfer.methods.probe_then_finetune import ProbeThenFinetune
from nlp_transfer.methods.scratch import FromScratch
from nlp_transfer.methods.unfreeze import UnfreezeLast

METHODS: dict[str, type[Method]] = {
    "full": FullFineTuning,
    "probe": Probe,
    "unfreeze_last": UnfreezeLast,
    "lora": Lora,
    "probe_then_finetune": ProbeThenFinetune,
    "scratch": FromScratch,
    "contrastive": Contrastive,
}

__all__ = ["METHODS", "Method", "Phase", "PhaseContext", "PhaseInputs", "check_serves", "parameter_counts"]
