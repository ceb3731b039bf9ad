"""What a terminal shows (issue 31): a run on a pseudo-terminal draws one progress bar per phase that matters, no
bar for work under a second or two (tokenizing a small file, writing the cache), no nested evaluation bar and none
of the cursor-up codes (`ESC [A`) such a bar leaves behind."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import write_recipe

BAR = re.compile(r"\r([^\r\n|]*?)\s*\d+%\|")  # a tqdm frame: "\r<description>:  42%|"


def on_a_terminal(command: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal (100 columns) as its stdin, stdout and stderr; return its exit code
    and everything the terminal received."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a size, as a real terminal has
    process = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([main], [], [], 1.0)[0]:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.subprocess
def test_a_run_on_a_terminal_shows_one_bar_per_phase(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    # Long enough to train for a few seconds (its bar is drawn), with an evaluation every epoch.
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"epochs": 8})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1", "TERM": "xterm"}
    code, shown = on_a_terminal([sys.executable, "-m", "nlp_transfer", "run", str(recipe)], env)
    assert code == 0, shown[-3000:]
    bars = {description.strip().rstrip(":") for description in BAR.findall(shown)}
    assert bars == {"train"}, bars  # the training bar; 86 rows tokenize and save with no bar
    assert "\x1b[A" not in shown and "Saving the dataset" not in shown and "Tokenizing" not in shown
    assert shown.count("train: epoch ") == 8  # one line per evaluation, above the bar
    assert "{'loss'" not in shown and "run folder:" in shown
