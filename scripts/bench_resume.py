"""Kill a real all-MiniLM-L6-v2 fine-tuning run with SIGKILL, resume it, and compare with a run nothing stopped.

    python scripts/bench_resume.py [--train-samples 2000] [--checkpoint-steps 20]

Both runs are recipes/quickstart.yaml on the same seeded SST-2 subset (300 dev sentences), full fine-tuning, with
a checkpoint every --checkpoint-steps steps. The stopped run is killed as soon as its second checkpoint is sealed,
then `nlp-transfer run --resume` finishes it. Prints both runs' eval metrics, the wall times, and what a checkpoint
costs (its size, and the time to check its seal, which is what sealing it cost too: one sha256 pass).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--checkpoint-steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_resume")
    args = parser.parse_args()

    from bench_results import write_results

    from nlp_transfer.train.checkpoints import SEAL_FILE, by_step, problem

    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    def command(run: Path, *extra: str) -> list[str]:
        settings = [
            f"data.max_train_samples={args.train_samples}",
            "data.max_eval_samples=300",
            "train.batch_size=16",
            f"train.checkpoint_steps={args.checkpoint_steps}",
        ]
        overrides = [part for setting in settings for part in ("-o", setting)]
        recipe = str(REPO / "recipes" / "quickstart.yaml")
        return [sys.executable, "-m", "nlp_transfer", "run", recipe, *overrides, "--output-dir", str(run), *extra]

    straight, stopped = args.out / "straight", args.out / "killed"
    started = time.perf_counter()
    subprocess.run([*command(straight), "--overwrite"], env=env, check=True, capture_output=True)
    straight_seconds = time.perf_counter() - started

    started = time.perf_counter()
    process = subprocess.Popen(
        [*command(stopped), "--overwrite"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    second = stopped / "checkpoints" / "train" / f"checkpoint-{2 * args.checkpoint_steps}" / SEAL_FILE
    while not second.is_file() and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = time.perf_counter() - started
    newest = by_step(stopped / "checkpoints" / "train")[0]
    size = sum(p.stat().st_size for p in newest.rglob("*") if p.is_file())
    checked = time.perf_counter()
    verdict = problem(newest)
    check_seconds = time.perf_counter() - checked

    started = time.perf_counter()
    subprocess.run(command(stopped, "--resume"), env=env, check=True, capture_output=True)
    resume_seconds = time.perf_counter() - started

    def eval_metrics(run: Path) -> dict[str, float]:
        found = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["eval"]
        return {k: v for k, v in found.items() if not k.endswith(("runtime", "per_second"))}

    a, b = eval_metrics(straight), eval_metrics(stopped)
    print(f"all-MiniLM-L6-v2, {args.train_samples} SST-2 sentences, checkpoint every {args.checkpoint_steps} steps\n")
    print("| run | eval accuracy | eval macro-F1 | eval loss | wall seconds |")
    print("|---|---|---|---|---|")
    print(
        f"| uninterrupted | {a['eval_accuracy']:.4f} | {a['eval_macro_f1']:.4f} | {a['eval_loss']:.6f} | "
        f"{straight_seconds:.0f} |"
    )
    print(
        f"| killed at {newest.name}, then --resume | {b['eval_accuracy']:.4f} | {b['eval_macro_f1']:.4f} | "
        f"{b['eval_loss']:.6f} | {killed_after:.0f} + {resume_seconds:.0f} |"
    )
    print(f"\nevery eval metric identical: {a == b}")
    print(
        f"newest checkpoint at the kill: {newest.name}, {size / 1e6:.0f} MB, seal {verdict or 'valid'}, "
        f"checked in {check_seconds:.2f} s"
    )
    rows = [
        {"run": "uninterrupted", "eval": a, "wall_seconds": straight_seconds},
        {
            "run": f"killed at {newest.name}, then --resume",
            "eval": b,
            "killed_after_seconds": killed_after,
            "resume_seconds": resume_seconds,
            "checkpoint_bytes": size,
            "seal_check_seconds": check_seconds,
        },
    ]
    print(f"wrote {write_results('bench_resume', rows, seeds=[42], notes=f'every eval metric identical: {a == b}')}")


if __name__ == "__main__":
    main()
