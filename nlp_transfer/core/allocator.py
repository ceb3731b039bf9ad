"""A faster memory allocator for the command line: tcmalloc, preloaded when the system has it.

Why: glibc's malloc hands every allocation over 32 MiB to the kernel and back, so the word embeddings' gradient
(30522 x 384 floats, 47 MB, for all-MiniLM-L6-v2) is zero-filled in fresh pages, one page fault per 4 KiB, at every
micro-batch: 40 ms of a 400 ms quickstart step (`scripts/profile_step.py --shapes`). tcmalloc keeps such blocks and
reuses them: the same step takes about 300 ms and the quickstart trains 1.23x faster with the same weights
(docs/speed.md). PyTorch's own CPU launcher (`torch.backends.xeon.run_cpu --enable-tcmalloc`) preloads it the same
way. An allocator must be in place before the process starts, so the command re-executes itself once, before it
imports anything heavy, with tcmalloc added to LD_PRELOAD. Linux only; NLP_TRANSFER_ALLOCATOR=system turns it off;
nothing changes where the library is absent (Debian/Ubuntu: apt-get install libtcmalloc-minimal4).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping

ALLOCATOR_ENV = "NLP_TRANSFER_ALLOCATOR"
LIBRARIES = ("tcmalloc_minimal", "tcmalloc")  # gperftools' allocator without and with its profiler
QUIET_THRESHOLD = 1 << 50  # bytes: no allocation is that large


def allocator_in_use(environ: Mapping[str, str] = os.environ) -> str:
    """tcmalloc when preloaded (by us or by hand), else the system's malloc: what environment.json records."""
    return "tcmalloc" if "tcmalloc" in environ.get("LD_PRELOAD", "") else "system"


def preloaded_environment(
    environ: Mapping[str, str], platform: str, find: Callable[[str], str | None]
) -> dict[str, str] | None:
    """The environment to re-execute with (tcmalloc first in LD_PRELOAD), or None to carry on as we are: not Linux,
    turned off, already preloaded (so a re-executed process never loops), or no tcmalloc on this system."""
    if platform != "linux" or environ.get(ALLOCATOR_ENV, "auto") == "system":
        return None
    if allocator_in_use(environ) == "tcmalloc":
        return None
    preload = environ.get("LD_PRELOAD", "")
    library = next((found for name in LIBRARIES if (found := find(name))), None)
    if library is None:
        return None
    return {
        # gperftools may report each allocation over 1 GiB on stderr (a long evaluation's logits can be one): noise.
        "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(QUIET_THRESHOLD),
        **environ,
        "LD_PRELOAD": f"{library}:{preload}" if preload else library,
    }


def reexecute_with_tcmalloc() -> None:
    """Replace this process by the same command with tcmalloc preloaded, where preloaded_environment says so."""
    environment = preloaded_environment(os.environ, sys.platform, ctypes.util.find_library)
    if environment is None:
        return
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
    except OSError:
        return  # could not re-execute: the system allocator it is, as before
