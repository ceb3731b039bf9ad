"""Bad input, measured: how long a user waits for the answer and how many lines they read, for this checkout and a
baseline checkout (the code before issue 15), on all-MiniLM-L6-v2 with the quickstart recipe (SST-2).

    git archive ece0f11 | tar -x -C /tmp/baseline      # the code before issue 15
    python scripts/bench_bad_input.py --baseline /tmp/baseline

Every case is `python -m nlp_transfer.cli ...` in a fresh process with PYTHONPATH at the checkout and a cold
tokenization cache of its own (a first attempt), so the seconds include Python start-up and imports. It prints, per
case and checkout: the exit code, the seconds until the command ended, the lines of output (stdout and stderr) and
the start of the last line. Then what the checks cost when nothing is wrong: opening a MiniLM run folder (every
model file's header, the tokenizer's sha256) in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_results import write_results

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "quickstart.yaml"


def cli(checkout: Path, args: list[str], cache: Path) -> tuple[int, float, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1", "NLP_TRANSFER_CACHE": str(cache)}
    started = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH; started from a checkout it
    # would import that checkout's code for the baseline too.
    done = subprocess.run(
        [sys.executable, "-m", "nlp_transfer.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
        cwd=checkout,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in (done.stdout + done.stderr).replace("\r", "\n").splitlines() if line.strip()]
    return done.returncode, seconds, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare against")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bad-input-"))
    try:
        run = prepare_run_folder(work)
        cases = bad_inputs(work, run)
        checkouts = {"before": args.baseline.resolve(), "now": REPO}
        print("| bad input | checkout | exit | seconds | lines of output | last line |")
        print("|---|---|---|---|---|---|")
        rows = []
        for name, command in cases.items():
            for label, checkout in checkouts.items():
                # A case's own output folder per checkout: the baseline's completed run must not answer for this one.
                own = [argument.replace("{checkout}", label) for argument in command]
                code, seconds, lines = cli(checkout, own, work / f"cache-{label}-{len(name)}-{time.time_ns()}")
                last = (lines[-1] if lines else "").replace("|", "\\|")[:90]
                print(f"| {name} | {label} | {code} | {seconds:.1f} | {len(lines)} | `{last}` |", flush=True)
                rows.append(
                    {
                        "bad_input": name,
                        "checkout": label,
                        "exit": code,
                        "seconds": seconds,
                        "lines": len(lines),
                        "last_line": lines[-1] if lines else "",
                    }
                )
        opening = open_cost(run)
        print(f"\nopening the run folder now (checks included): {opening:.1f} ms (median of 20)")
        notes = f"opening the run folder now (checks included): {opening:.1f} ms (median of 20)"
        print(f"wrote {write_results('bench_bad_input', rows, notes=notes)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare_run_folder(work: Path) -> Path:
    """A complete MiniLM run (one optimizer step on 2,000 sentences), trained by this checkout."""
    run = work / "run"
    code, seconds, lines = cli(
        REPO,
        ["run", str(RECIPE), "--output-dir", str(run), "-o", "data.max_train_samples=2000", "-o", "train.max_steps=1"],
        work / "cache-prepare",
    )
    assert code == 0, "\n".join(lines[-20:])
    print(f"trained {run} in {seconds:.0f} s\n")
    return run


def bad_inputs(work: Path, run: Path) -> dict[str, list[str]]:
    damaged = work / "damaged"
    shutil.copytree(run, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    tokenless = work / "tokenless"
    shutil.copytree(run, tokenless)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tokenless / name).unlink()
    a_file = work / "a-file"
    a_file.write_text("", encoding="utf-8")
    recipe = str(RECIPE)
    return {
        "unfreeze_last 9 (6 layers)": ["run", recipe, "-o", "method.name=unfreeze_last", "-o", "method.layers=9"],
        "LoRA target q_proj": ["run", recipe, "-o", "method.name=lora", "-o", "method.target_modules=[q_proj]"],
        "max_length 1024 (512 positions)": ["run", recipe, "-o", "task.max_length=1024", "-o", "train.max_steps=1",
                                            "--output-dir", str(work / "long-{checkout}")],
        "--output-dir below a file": ["run", recipe, "--output-dir", str(a_file / "run")],
        "predict, weights cut short": ["predict", str(damaged), "a gripping film"],
        "predict, tokenizer files deleted": ["predict", str(tokenless), "a gripping film"],
        "predict --out in a missing folder": ["predict", str(run), "a gripping film", "--out",
                                              str(work / "missing" / "p.jsonl")],
        # Round three (issue 26 section 5): a method given a task it cannot serve, init trusting what it is told,
        # options that cannot apply, trackers not installed, library chatter before the line.
        "contrastive on regression": ["run", str(REPO / "recipes" / "emobank_minilm.yaml"), "-o",
                                      "method.name=contrastive"],
        "init on a 0-byte file": ["init", str(a_file), "--out", str(work / "never.yaml")],
        "init --task qa on a classification file": ["init", "sst2/train.tsv", "--task", "qa", "--out",
                                                    str(work / "never.yaml")],
        "evaluate --text-pair, single-text model": ["evaluate", str(run), "--data", "sst2/dev.tsv", "--text-pair",
                                                    "label"],
        "report_to comet_ml, not installed": ["run", recipe, "-o", "train.report_to=[comet_ml]"],
        "contextual augmentation, no MLM head": ["run", recipe, "-o", "augment.operations=[contextual]"],
    }  # fmt: skip


def open_cost(run: Path) -> float:
    sys.path.insert(0, str(REPO))
    from nlp_transfer.use.trained import open_trained

    times = []
    for _ in range(20):
        started = time.perf_counter()
        open_trained(run)
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


if __name__ == "__main__":
    main()
