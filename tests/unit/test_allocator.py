"""The command line preloads tcmalloc where the system has it (core/allocator.py): when it re-executes, with what,
and that a re-executed process neither loops nor loses its arguments."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from nlp_transfer.core.allocator import ALLOCATOR_ENV, QUIET_THRESHOLD, allocator_in_use, preloaded_environment


def found(name: str) -> str | None:
    return {"tcmalloc_minimal": "libtcmalloc_minimal.so.4"}.get(name)


def test_tcmalloc_goes_first_in_ld_preload_and_the_rest_is_kept() -> None:
    assert preloaded_environment({"HOME": "/h"}, "linux", found) == {
        "HOME": "/h",
        "LD_PRELOAD": "libtcmalloc_minimal.so.4",
        "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(QUIET_THRESHOLD),  # no "large alloc" reports on stderr
    }
    own = preloaded_environment({"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "1000"}, "linux", found)
    assert own is not None and own["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] == "1000"  # the user's setting wins
    again = preloaded_environment({"LD_PRELOAD": "libother.so"}, "linux", found)
    assert again is not None and again["LD_PRELOAD"] == "libtcmalloc_minimal.so.4:libother.so"


@pytest.mark.parametrize(
    ("environ", "platform", "finder"),
    [
        ({}, "darwin", found),  # Linux only
        ({ALLOCATOR_ENV: "system"}, "linux", found),  # turned off
        ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "linux", found),  # already preloaded: no loop
        ({}, "linux", lambda name: None),  # no tcmalloc on this system
    ],
)
def test_no_re_execution(environ: dict[str, str], platform: str, finder: object) -> None:
    assert preloaded_environment(environ, platform, finder) is None  # type: ignore[arg-type]


def test_a_run_records_its_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "libtcmalloc_minimal.so.4")
    assert allocator_in_use() == "tcmalloc"
    monkeypatch.delenv("LD_PRELOAD")
    assert allocator_in_use() == "system"


PROBE = """
import os, sys
from nlp_transfer.core.allocator import reexecute_with_tcmalloc
reexecute_with_tcmalloc()
loaded = any("tcmalloc" in line for line in open("/proc/self/maps"))
print(loaded, sys.argv[1:])
"""


@pytest.mark.skipif(
    sys.platform != "linux" or not any(ctypes.util.find_library(n) for n in ("tcmalloc_minimal", "tcmalloc")),
    reason="no tcmalloc on this system (Debian/Ubuntu: apt-get install libtcmalloc-minimal4)",
)
@pytest.mark.parametrize(("setting", "expected"), [("auto", "True"), ("system", "False")])
def test_a_process_re_executes_once_with_tcmalloc_and_its_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, expected: str
) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setenv(ALLOCATOR_ENV, setting)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(probe), "run", "a b.yaml"], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [f"{expected} ['run', 'a b.yaml']"]  # one line: the process ran its body once
    assert done.stderr == ""
