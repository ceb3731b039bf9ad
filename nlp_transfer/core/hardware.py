"""Which device a command runs on and in which precision: one policy for training and for every inference path
(probe features, predict, evaluate, cluster, self-training's pseudo-labels, continued pre-training).

Precision `auto` picks bf16 autocast where the hardware does bf16 natively (CUDA devices with bf16; CPUs with
AVX512-BF16 or AMX, read from the CPU's feature flags rather than guessed), fp16 with loss scaling on CUDA devices
without bf16, and fp32 otherwise. Autocast keeps the weights in fp32 and runs the matrix products in the low
precision, so a model trained or run this way is saved and reloaded exactly as an fp32 one. An explicit precision
that the hardware cannot do is a UserError, never a silent fallback.
"""

from __future__ import annotations

import os
import platform
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from nlp_transfer.core.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")  # x86 AVX512-BF16 / AMX; Arm's BF16 extension
# Tokens a low-precision training batch's length is rounded up to a multiple of (train.pad_to_multiple_of: auto).
# The CPU's bf16 kernels (oneDNN) keep what they build for each new (rows x length) shape, so a process that trains
# on batches of every length grows for hundreds of batches: a 12-cell bf16 compare (scripts/bench_cells.py) grew
# its full cells' peak by 113 MiB and its LoRA cells' by 72; rounded to multiples of 8 they stay within 10-25 MiB
# of their first, as fp32 does. 8 costs 0-5% of SST-2 training speed, 16 costs 6-14% (bench_train.py, 2,000 and
# 5,000 sentences, alone). GPUs' tensor cores want multiples of 8 too; fp32 (MKL keeps nothing per shape) is not
# rounded. The server pads to its own multiple (serve/speed.py).
LENGTH_MULTIPLE = 8


@dataclass(frozen=True)
class Precision:
    """A resolved precision on one kind of device."""

    name: str  # fp32 | bf16 | fp16
    device_type: str  # cpu | cuda | mps
    requested: str  # what the recipe or option asked for (auto, or an explicit choice)
    reason: str  # why: what the hardware offers

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype; None for fp32."""
        return DTYPES.get(self.name)

    def autocast(self) -> AbstractContextManager[Any]:
        """The context inference runs in: autocast to the low precision, or nothing for fp32."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def training_arguments(self) -> dict[str, Any]:
        """TrainingArguments fields for this precision: bf16/fp16 turn on accelerate's autocast (fp16 with a
        gradient scaler); bf16 on a CPU also needs use_cpu, which TrainingArguments asks for."""
        if self.name == "fp32":
            return {}
        fields: dict[str, Any] = {self.name: True}
        if self.device_type == "cpu":
            fields["use_cpu"] = True
        return fields

    @property
    def length_multiple(self) -> int | None:
        """What a batch's length is rounded up to a multiple of in this precision (None: its longest text)."""
        return None if self.dtype is None else LENGTH_MULTIPLE

    def record(self) -> dict[str, str]:
        return {"precision": self.name, "requested": self.requested, "device": self.device_type, "why": self.reason}


@cache
def cpu_bf16() -> str | None:
    """The CPU feature that does bf16 natively (e.g. 'avx512_bf16'), or None."""
    flags = _cpu_flags()
    return next((flag for flag in CPU_BF16_FLAGS if flag in flags), None)


def _cpu_flags() -> set[str]:
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.10: cpuinfo's reading, any OS
    if capabilities is not None:
        return {name for name, value in capabilities().items() if value is True}
    try:  # older torch: the kernel's flags (Linux)
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cuda_bf16(device: torch.device) -> bool:
    """Whether the CUDA device does bf16 in hardware (Ampere and newer), not by emulation."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_precision(requested: str, device: torch.device, field: str) -> Precision:
    """The precision to run in on `device`; an explicit choice the device cannot do is a UserError naming `field`."""
    if requested not in PRECISIONS:
        raise UserError(f"{field} {requested}: not a precision; choose one of {', '.join(PRECISIONS)}")
    kind = device.type
    if kind == "cuda":
        name = torch.cuda.get_device_name(device)
        bf16 = cuda_bf16(device)
        offers = {"bf16": bf16, "fp16": True}
        best = ("bf16", f"{name} does bf16") if bf16 else ("fp16", f"{name} has no bf16; fp16 with loss scaling")
    elif kind == "cpu":
        feature = cpu_bf16()
        cpu = platform.processor() or platform.machine()
        offers = {"bf16": feature is not None, "fp16": False}
        best = ("bf16", f"the CPU has {feature}") if feature else ("fp32", f"the CPU ({cpu}) has no AVX512-BF16/AMX")
    else:  # mps and others: fp32 until measured
        offers = {"bf16": False, "fp16": False}
        best = ("fp32", f"{kind}: nlp-transfer runs fp32 there")
    if requested == "auto":
        return Precision(best[0], kind, requested, best[1])
    if requested == "fp32" or offers.get(requested, False):
        return Precision(requested, kind, requested, "asked for")
    lacks = _lacks(requested, device)
    raise UserError(f"{field}: {requested} is not supported on this machine ({lacks}); {_fix(field)}")


def _lacks(requested: str, device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} has no bf16 (it needs an Ampere or newer GPU)"
    if device.type == "cpu" and requested == "fp16":
        return "fp16 needs a CUDA GPU; this run is on the CPU"
    if device.type == "cpu":
        return "the CPU has neither AVX512-BF16 nor AMX, and no CUDA GPU is visible"
    return f"{device.type} runs in fp32 only"


def _fix(field: str) -> str:
    return f"set {field} to auto (the fastest this machine does) or fp32"


def best_device() -> torch.device:
    """CUDA when there is a GPU (this process's own under accelerate launch / torchrun), else MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(requested: str, option: str = "--device") -> torch.device:
    """auto | cpu | cuda | cuda:N (| mps) -> a device that exists; anything else is a UserError naming `option`."""
    if requested == "auto":
        return best_device()
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise UserError(f"{option} {requested}: not a device; use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UserError(f"{option} {requested}: CUDA is not available here ({why}); use {option} cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(f"{option} {requested}: there are {count} CUDA devices (cuda:0 to cuda:{count - 1})")
        return device if device.index is not None else torch.device("cuda", 0)
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"{option} {requested}: MPS is not available here; use {option} cpu or auto")
    if device.type not in {"cpu", "cuda", "mps"}:
        raise UserError(f"{option} {requested}: not supported; use auto, cpu, cuda or cuda:N")
    return device


def training_device(use_cpu: bool) -> torch.device:
    """The device the Trainer will train on (its own rule): the CPU when told, else CUDA, else MPS, else the CPU."""
    if use_cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in {"1", "true", "yes"}:
        return torch.device("cpu")
    return best_device()


@dataclass(frozen=True)
class Runtime:
    """Where and how inference runs: a device and a precision on it."""

    device: torch.device
    precision: Precision

    @classmethod
    def choose(cls, device: str = "auto", precision: str = "auto") -> Runtime:
        found = resolve_device(device)
        return cls(found, resolve_precision(precision, found, "--precision"))

    def describe(self) -> str:
        return f"{self.device} {self.precision.name}"
