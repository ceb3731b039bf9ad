"""Share and reload, measured on all-MiniLM-L6-v2 with LoRA on SST-2: the same model reached five ways.

    python scripts/bench_share.py [--train-samples 4000] [--run runs/bench_share/lora]

Trains a LoRA run (unless --run names one), pushes it to a local Hub server (tests/fakehub.py; the real
huggingface_hub client), then scores SST-2 dev (872 sentences) with: the run folder (adapter on its base), the pushed
repo id (downloaded), a merged export, and the merged export's ONNX file under onnxruntime. Prints accuracy, agreement
with the run folder's labels, the largest logit difference and the time to score the dev set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the fake Hub is reached through patched client settings only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None, help="an existing LoRA run folder (default: train one)")
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_share")
    args = parser.parse_args()

    import pytest
    import torch
    from bench_results import write_results
    from typer.testing import CliRunner

    from nlp_transfer.cli import app
    from nlp_transfer.data.loading import load_extra_split
    from nlp_transfer.use.predict import open_predictor
    from tests.conftest import DATA_ROOT
    from tests.fakehub import FakeHub, patch_client

    run = args.run or args.out / "lora"
    if args.run is None and not (run / "run_status.json").is_file():
        started = time.perf_counter()
        result = CliRunner().invoke(
            app,
            [
                "run",
                str(REPO / "recipes" / "sst2_minilm_lora.yaml"),
                "--output-dir",
                str(run),
                "-o",
                f"data.max_train_samples={args.train_samples}",
            ],
        )
        assert result.exit_code == 0, result.output
        print(f"trained {run} in {time.perf_counter() - started:.0f} s")
    dev = load_extra_split("sst2/dev.tsv", split="eval", field="dev", data_root=DATA_ROOT, base_dir=None).splits["eval"]
    texts, gold = [str(t) for t in dev["sentence"]], np.asarray(dev["label"])

    def score(model: str | Path) -> tuple[np.ndarray, float]:
        predictor = open_predictor(model, batch_size=64)
        started = time.perf_counter()
        logits = torch.cat(list(predictor.logits(texts))).numpy()
        return logits, time.perf_counter() - started

    rows: list[tuple[str, np.ndarray, float]] = []
    reference, seconds = score(run)
    rows.append(("run folder (adapter on its base)", reference, seconds))

    monkeypatch = pytest.MonkeyPatch()
    work = Path(tempfile.mkdtemp(prefix="bench-share-"))
    with FakeHub() as hub:
        patch_client(hub, monkeypatch, work)
        os.environ["HF_TOKEN"] = hub.token
        started = time.perf_counter()
        pushed = CliRunner().invoke(app, ["push", str(run), "--repo-id", "fake-user/sst2-minilm-lora"])
        assert pushed.exit_code == 0, pushed.output
        print(f"push: {time.perf_counter() - started:.1f} s, {len(hub.files('fake-user/sst2-minilm-lora'))} files")
        logits, seconds = score("fake-user/sst2-minilm-lora")
        rows.append(("pushed repo id (downloaded)", logits, seconds))
        os.environ.pop("HF_TOKEN")
    monkeypatch.undo()

    exported = work / "merged"
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["export", str(run), "--merge", "--onnx", "--output-dir", str(exported)])
    assert result.exit_code == 0, result.output
    print(f"export --merge --onnx: {time.perf_counter() - started:.1f} s ({result.stdout.strip()})")
    logits, seconds = score(exported)
    rows.append(("merged export (plain transformers)", logits, seconds))
    rows.append(("merged export, ONNX (onnxruntime)", *onnx_logits(exported, texts)))

    print(f"\nSST-2 dev, {len(texts)} sentences, all-MiniLM-L6-v2 + LoRA, {torch.get_num_threads()} CPU threads\n")
    print("| model reached as | accuracy | labels = run folder's | max abs logit diff | seconds |")
    print("|---|---|---|---|---|")
    measured = []
    for name, found, seconds in rows:
        accuracy = float((found.argmax(-1) == gold).mean())
        agree = float((found.argmax(-1) == reference.argmax(-1)).mean())
        difference = float(np.abs(found - reference).max())
        print(f"| {name} | {accuracy:.4f} | {agree:.2%} | {difference:.1e} | {seconds:.1f} |")
        measured.append(
            {
                "reached_as": name,
                "accuracy": accuracy,
                "labels_equal_to_run_folder": agree,
                "max_abs_logit_diff": difference,
                "seconds": seconds,
                "sentences": len(texts),
            }
        )
    print(f"wrote {write_results('bench_share', measured, seeds=[42])}")


def onnx_logits(folder: Path, texts: list[str]) -> tuple[np.ndarray, float]:
    import onnxruntime
    import yaml
    from transformers import AutoTokenizer

    max_length = yaml.safe_load((folder / "recipe.resolved.yaml").read_text(encoding="utf-8"))["task"]["max_length"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    started = time.perf_counter()
    found = []
    for start in range(0, len(texts), 64):
        chunk = texts[start : start + 64]
        batch = tokenizer(chunk, truncation=True, max_length=max_length, padding=True, return_tensors="np")
        found.append(session.run(["logits"], {name: batch[name] for name in names})[0])
    return np.concatenate(found), time.perf_counter() - started


if __name__ == "__main__":
    main()
