"""Memory of QA evaluation: metrics batch by batch (ours) vs. every logit held until the end (the usual way).

The usual extractive-QA evaluation (transformers' run_qa.py, most tutorials) lets the Trainer collect the start and
end logits of every window, (windows x max_length) floats twice, padded to the longest batch, then post-processes
them at once; on a large eval set that is what runs out of memory. nlp-transfer's QA task sets
TrainingArguments.batch_eval_metrics and reduces each batch to its n best spans at once (tasks/qa.py SpanMetrics).

This script evaluates the same tiny QA model on the same windows both ways, each in a fresh process, and prints the
most logit memory handed to the metric at once (one batch vs. the whole set), the peak resident memory of the
process, and the EM/F1 of both (they must agree). On CPU the Trainer's copies of the logits are one part of the
process's memory among many; on a GPU the Trainer keeps the collected logits in GPU memory, which is where
evaluation runs out of memory.
The eval set is squad_mini dev repeated --copies times (real questions and contexts; the model is random, so the
scores are near zero: this measures memory, not accuracy).

Run: python scripts/bench_qa_eval.py [--copies 40] [--max-length 384]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "data" / "squad_mini" / "dev.json"


def build(folder: Path, copies: int, max_length: int) -> None:
    """A tiny random BERT QA model with MiniLM's tokenizer, and the eval set written as JSON lines."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    sys.path.insert(0, str(REPO))
    from tests.conftest import minilm_dir

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=max_length,
    )
    BertForQuestionAnswering(config).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    document = json.loads(DEV.read_text(encoding="utf-8"))
    rows = [
        {"question": qa["question"], "context": p["context"], "answers": {
            "text": [a["text"] for a in qa["answers"]], "answer_start": [a["answer_start"] for a in qa["answers"]]
        }}
        for article in document["data"] for p in article["paragraphs"] for qa in p["qas"]
    ]  # fmt: skip
    with (folder / "eval.jsonl").open("w", encoding="utf-8") as handle:
        for copy in range(copies):
            for row in rows:
                handle.write(json.dumps({**row, "question": f"{row['question']} ({copy})"}) + "\n")


def evaluate(folder: Path, mode: str, max_length: int) -> dict[str, float]:
    """One evaluation in this process: `batched` (ours) or `accumulated` (all logits, post-processed at the end)."""
    import datasets
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        EvalPrediction,
        TrainingArguments,
    )

    from nlp_transfer.data.loading import LoadedData
    from nlp_transfer.recipe import QuestionAnsweringTask
    from nlp_transfer.tasks.qa import QuestionAnswering, SpanMetrics
    from nlp_transfer.train.trainer import TaskTrainer

    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    split = datasets.load_dataset("json", data_files=str(folder / "eval.jsonl"), split="train")
    config = QuestionAnsweringTask(name="qa", max_length=max_length, stride=128)
    data = LoadedData(splits=datasets.DatasetDict(train=split, eval=split), sources={"train": ["x"], "eval": ["x"]})
    prepared = QuestionAnswering(config).prepare(data, tokenizer, pad_to_max_length=False)
    features = prepared.splits["eval"]
    model = AutoModelForQuestionAnswering.from_pretrained(folder / "model")
    args = TrainingArguments(
        output_dir=str(folder / "out"), per_device_eval_batch_size=64, report_to="none", disable_tqdm=True
    )

    held = {"logits_bytes": 0}  # the most logit bytes handed to the metric at once

    def all_at_once(prediction: EvalPrediction) -> dict[str, float]:
        """The logits of every window arrive together; post-processing then reads the windows 64 at a time, so
        what differs from `batched` is only the logits the Trainer collected."""
        metric = SpanMetrics(features, config, allow_null=False)
        start_logits, end_logits = prediction.predictions[:2]
        held["logits_bytes"] = start_logits.nbytes + end_logits.nbytes
        for begin in range(0, len(start_logits), 64):
            chunk = (start_logits[begin : begin + 64], end_logits[begin : begin + 64])
            result = metric(EvalPrediction(chunk, prediction.label_ids), begin + 64 >= len(start_logits))
        return result

    def batch_by_batch(dataset: object) -> Callable[..., dict[str, float]]:
        metric = SpanMetrics(features, config, allow_null=False)

        def measured(prediction: EvalPrediction, compute_result: bool) -> dict[str, float]:
            size = sum(x.element_size() * x.nelement() for x in prediction.predictions[:2])
            held["logits_bytes"] = max(held["logits_bytes"], size)
            return metric(prediction, compute_result)

        return measured

    trainer = TaskTrainer(
        model=model,
        args=args,
        eval_dataset=features,
        data_collator=DataCollatorWithPadding(tokenizer),
        group_by_length=False,
        batch_metrics_for=batch_by_batch if mode == "batched" else None,
        compute_metrics=None if mode == "batched" else all_at_once,
    )
    rss_before = _rss_mb()
    started = time.perf_counter()
    metrics = trainer.evaluate()
    return {
        "windows": len(features),
        "questions": metrics["eval_total"],
        "exact_match": metrics["eval_exact_match"],
        "f1": metrics["eval_f1"],
        "seconds": round(time.perf_counter() - started, 1),
        "rss_before_mb": rss_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "logits_held_mb": held["logits_bytes"] / 2**20,
    }


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=40, help="squad_mini dev (440 questions) repeated this often")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--worker", choices=["batched", "accumulated"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(evaluate(args.folder, args.worker, args.max_length)))
        return

    from bench_results import write_results

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "NLP_TRANSFER_CACHE": str(folder / "cache"), "HF_DATASETS_CACHE": str(folder / "hf")}
        build(folder, args.copies, args.max_length)
        results = {}
        # The first worker also fills the tokenization cache; run "batched" twice so both measured runs read it.
        for mode in ("batched", "accumulated", "batched"):
            command = [sys.executable, __file__, "--worker", mode, "--folder", str(folder)]
            command += ["--max-length", str(args.max_length)]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            results[mode] = json.loads(output.strip().splitlines()[-1])
    batched, accumulated = results["batched"], results["accumulated"]
    logits_mb = accumulated["windows"] * args.max_length * 2 * 4 / 2**20
    questions, windows = batched["questions"], batched["windows"]
    print(f"eval set: {questions:.0f} questions, {windows} windows of <= {args.max_length} tokens")
    print(f"start+end logits of every window (float32, padded to {args.max_length}): {logits_mb:.0f} MB")
    columns = ("logits held MB", "peak RSS MB", "growth MB", "seconds", "EM", "F1")
    print(f"{'mode':34} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, (14, 12, 10, 8, 7, 7), strict=True)))
    for name, result in (("batch by batch (nlp-transfer)", batched), ("all logits at the end (usual)", accumulated)):
        growth = result["peak_rss_mb"] - result["rss_before_mb"]
        print(
            f"{name:34} {result['logits_held_mb']:14.2f} {result['peak_rss_mb']:12.0f} {growth:10.0f} "
            f"{result['seconds']:8.1f} {result['exact_match']:7.3f} {result['f1']:7.3f}"
        )
    same = (batched["exact_match"], batched["f1"]) == (accumulated["exact_match"], accumulated["f1"])
    print("same EM/F1 both ways:", same)
    rows = [
        {"evaluation": "batch by batch (nlp-transfer)", **batched},
        {"evaluation": "all logits at the end", **accumulated},
    ]
    print(f"wrote {write_results('bench_qa_eval', rows, notes=f'same EM/F1 both ways: {same}')}")


if __name__ == "__main__":
    main()
