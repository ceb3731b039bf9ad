"""Serving benchmark: `nlp-transfer serve` on loopback against `predict --file` on the same sentences.

What it measures (the quickstart model: all-MiniLM-L6-v2 fine-tuned on SST-2; --run RUN_DIR, or trained here)
    predict --file  the predictor `predict --file` runs, on SST-2 dev's 872 sentences, batch 32: texts/s (the
                    baseline; the model's load is not counted, as a server's is not)
    serve           a server process (default settings: max batch 32, wait 5 ms, the precision policy) and a
                    closed-loop client in this process (asyncio + httpx): concurrency 1, 8, 32, 64 x requests of 1
                    and of 32 sentences, each cell bounded by --seconds and --max-requests: requests/s, texts/s,
                    p50/p95/p99 latency, errors, the batch sizes the server ran (from /metrics), and the CPU
                    seconds per second the server and the client (this process) used: the client shares the cores
    memory          the server's resident memory sampled every few seconds over --soak-seconds at concurrency 32
                    with single sentences (the memory-flat check: 300 s in the full run)
    ONNX int8       the same cells against the run's `export --quantize int8` (model.int8.onnx, onnxruntime)
Targets (issue 29, this 2-core CPU): at concurrency 32 with single sentences texts/s >= 80% of predict --file's;
p99 < 100 ms at concurrency 8; no errors but the documented 503 under overload; memory flat over 5 minutes.

Everything is on 127.0.0.1; each cell stops by itself; the servers are stopped with SIGTERM at the end.

How to run (alone on the machine: the client and the server share its 2 cores)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_serve.py [--run RUN_DIR]       # about 12 minutes (+3 to train)
    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_serve.py --quick                # a small check, about 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_results import write_results
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
# The results page's columns (a row has those of its mode; the samples and batch-size counts stay in the JSON).
SHOWN_COLUMNS = (
    "backend",
    "mode",
    "concurrency",
    "texts_per_request",
    "requests_per_s",
    "texts_per_s",
    "vs_predict_file",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_batch",
    "errors",
    "server_cpu",
    "client_cpu",
    "rss_mb_start",
    "rss_mb_settled",
    "rss_mb_end",
    "growth_after_settling_pct",
    "exit_code",
)
MEMORY_FLAT_PCT = 5.0  # resident memory may grow this much after the first minute and still count as flat
SETTLING_SECONDS = 60.0
STARTED = re.compile(r"serving .* at (http://127\.0\.0\.1:\d+) ")


def sst2_dev(root: Path) -> list[str]:
    lines = (root / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t", 1)[1] for line in lines if line.strip()]


def train_quickstart(folder: Path, samples: int | None) -> Path:
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.pipeline import RunOptions, run

    overrides = [f"output.dir={folder}"]
    if samples is not None:
        overrides += [f"data.max_train_samples={samples}", "train.eval_strategy='no'"]
    run(load_recipe(REPO / "recipes" / "quickstart.yaml", overrides), RunOptions())
    return folder


def int8_export(run: Path, folder: Path) -> Path:
    from nlp_transfer.use.export import ExportOptions, export

    if not (folder / "model.int8.onnx").is_file():
        export(run, ExportOptions(out=folder, quantize="int8", overwrite=True))
    return folder / "model.int8.onnx"


def predict_file_speed(model: Path, sentences: list[str], scratch: Path) -> float:
    """texts/s of `predict --file` (its predictor and its streaming path), the model already loaded."""
    from nlp_transfer.use.predict import PredictInputs, open_predictor, predict_inputs, read_inputs

    file = scratch / "sentences.txt"
    file.write_text("\n".join(sentence.replace("\n", " ") for sentence in sentences) + "\n", encoding="utf-8")
    predictor = open_predictor(model)
    inputs = read_inputs(predictor, PredictInputs(texts=[], file=file))
    predict_inputs(predictor, inputs, scratch / "warm.jsonl", show_progress=False)  # first-call costs
    started = time.perf_counter()
    predict_inputs(predictor, inputs, scratch / "predictions.jsonl", show_progress=False)
    return len(sentences) / (time.perf_counter() - started)


class Server:
    def __init__(self, model: Path) -> None:
        command = [sys.executable, "-m", "nlp_transfer", "serve", str(model), "--port", "0"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = ""
        self.line = ""
        ready = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:  # drained to the end: access lines must not fill the pipe
                if not self.url and (match := STARTED.search(line)):
                    self.url, self.line = match.group(1), line.strip()
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(600)
        if not self.url:
            raise SystemExit(f"the server did not start (exit code {self.process.poll()})")
        self.name = httpx.get(f"{self.url}/v1/models").json()["models"][0]["name"]

    def cpu_seconds(self) -> float:
        """CPU seconds the server process has used (user + system, every thread)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def batch_histogram(self) -> dict[str, float]:
        """The server's batch-size histogram: cumulative bucket counts by upper bound, and _sum / _count."""
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(f"{self.url}/metrics").text):
            if family.name == "nlp_transfer_batch_size":
                for sample in family.samples:
                    key = sample.labels.get("le", sample.name.rsplit("_", 1)[-1])
                    found[key] = sample.value
        return found

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120)


async def load(url: str, sentences: list[str], concurrency: int, size: int, seconds: float, limit: int) -> Any:
    """A closed loop: `concurrency` clients each send a request of `size` sentences, wait, send the next."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        position = number * size * 7
        while time.perf_counter() < deadline and sent < limit:
            sent += 1
            batch = [sentences[(position + i) % len(sentences)] for i in range(size)]
            position += size * concurrency
            started = time.perf_counter()
            try:
                response = await http.post(url, json={"inputs": batch})
                if response.status_code != 200 or len(response.json()["outputs"]) != size:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                    continue
            except httpx.HTTPError as err:
                errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(number, http) for number in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def cell(server: Server, sentences: list[str], concurrency: int, size: int, args: argparse.Namespace) -> dict:
    before = server.batch_histogram()
    url = f"{server.url}/v1/models/{server.name}/predict"
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    latencies, errors, elapsed = asyncio.run(load(url, sentences, concurrency, size, args.seconds, args.max_requests))
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    after = server.batch_histogram()
    count = after.get("count", 0) - before.get("count", 0)
    bounds = [key for key in after if key not in ("sum", "count")]
    seen, below = {}, 0.0
    for bound in bounds:  # cumulative buckets -> batches per bucket
        total = after[bound] - before.get(bound, 0)
        if total - below:
            seen[f"<={bound}"] = int(total - below)
        below = total
    done = np.asarray(latencies) * 1000 if latencies else np.asarray([float("nan")])
    return {
        "concurrency": concurrency,
        "texts_per_request": size,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "texts_per_s": round(len(latencies) * size / elapsed, 1),
        "p50_ms": round(float(np.percentile(done, 50)), 1),
        "p95_ms": round(float(np.percentile(done, 95)), 1),
        "p99_ms": round(float(np.percentile(done, 99)), 1),
        "mean_batch": round((after.get("sum", 0) - before.get("sum", 0)) / count, 2) if count else None,
        "batch_sizes": seen,
        "server_cpu": round(server_cpu / elapsed, 2),  # CPU seconds per second: 2.0 is both cores
        "client_cpu": round(client_cpu / elapsed, 2),
    }


def soak(server: Server, sentences: list[str], args: argparse.Namespace) -> dict:
    """Resident memory while concurrency 32 sends single sentences for --soak-seconds."""
    samples: list[float] = [server.rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(args.sample_every):
            samples.append(server.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    url = f"{server.url}/v1/models/{server.name}/predict"
    latencies, errors, elapsed = asyncio.run(load(url, sentences, 32, 1, args.soak_seconds, 10**9))
    stop.set()
    sampler.join()
    samples.append(server.rss_mb())
    # After the first minute, as MEMORY_FLAT_PCT says: padded batches of every shape take a few hundred batches to
    # be seen (docs/serving.md), far more than the first 10 s of a soak
    settled = samples[min(math.ceil(SETTLING_SECONDS / args.sample_every), len(samples) - 1)]
    return {
        "mode": "memory",
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "errors": errors,
        "rss_mb_start": round(samples[0], 1),
        "rss_mb_settled": round(settled, 1),
        "rss_mb_end": round(samples[-1], 1),
        "rss_mb_max": round(max(samples), 1),
        "growth_after_settling_pct": round(100 * (samples[-1] - settled) / settled, 2),
        "rss_mb_samples": [round(value, 1) for value in samples],
    }


def bench_backend(backend: str, model: Path, sentences: list[str], args: argparse.Namespace, scratch: Path) -> list:
    baseline = predict_file_speed(model, sentences, scratch)
    print(f"{backend}: predict --file {baseline:.1f} texts/s", flush=True)
    rows: list[dict[str, Any]] = [{"backend": backend, "mode": "predict --file", "texts_per_s": round(baseline, 1)}]
    server = Server(model)
    print(f"  {server.line}", flush=True)
    try:
        for size in args.sizes:
            for concurrency in args.concurrency:
                row = {"backend": backend, "mode": "serve", **cell(server, sentences, concurrency, size, args)}
                row["vs_predict_file"] = round(row["texts_per_s"] / baseline, 3)
                rows.append(row)
                print(
                    f"  c={concurrency:>2} x {size:>2} texts: {row['requests_per_s']:>7.1f} req/s "
                    f"{row['texts_per_s']:>7.1f} texts/s ({row['vs_predict_file']:.0%} of predict --file)  "
                    f"p50 {row['p50_ms']} p95 {row['p95_ms']} p99 {row['p99_ms']} ms  mean batch "
                    f"{row['mean_batch']}  errors {row['errors'] or 0}  CPU s/s server {row['server_cpu']} client "
                    f"{row['client_cpu']}",
                    flush=True,
                )
        if backend == "pytorch" or args.soak_all:
            memory = {"backend": backend, **soak(server, sentences, args)}
            rows.append(memory)
            print(
                f"  memory over {memory['seconds']} s: {memory['rss_mb_start']} -> {memory['rss_mb_end']} MB (max "
                f"{memory['rss_mb_max']}; {memory['growth_after_settling_pct']}% after settling)",
                flush=True,
            )
    finally:
        rows.append({"backend": backend, "mode": "shutdown", "exit_code": server.stop()})
    return rows


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked on the PyTorch rows."""
    serve = {
        (r["concurrency"], r["texts_per_request"]): r
        for r in rows
        if r["backend"] == "pytorch" and r["mode"] == "serve"
    }
    lines = []
    if (32, 1) in serve:
        ratio = serve[(32, 1)]["vs_predict_file"]
        verdict = "met" if ratio >= 0.8 else "NOT met"
        lines.append(f"c=32 single sentences: {ratio:.0%} of predict --file (target >= 80%): {verdict}")
    if (8, 1) in serve:
        p99 = serve[(8, 1)]["p99_ms"]
        lines.append(f"c=8 single sentences: p99 {p99} ms (target < 100 ms): {'met' if p99 < 100 else 'NOT met'}")
    for memory in (r for r in rows if r.get("mode") == "memory"):
        growth = memory["growth_after_settling_pct"]
        verdict = "met" if growth <= MEMORY_FLAT_PCT else "NOT met"
        lines.append(f"{memory['backend']} memory: {growth}% after settling (flat: <= {MEMORY_FLAT_PCT}%): {verdict}")
    counts = [r["errors"] for r in rows if isinstance(r.get("errors"), dict)]
    refused = sum(found.get("503", 0) for found in counts)  # the documented answer to a full queue
    failed = sum(sum(found.values()) for found in counts) - refused
    verdict = "met" if failed == 0 else "NOT met"
    lines.append(f"errors but 503: {failed} (target 0): {verdict}; 503 (a full queue): {refused}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a quickstart run folder (default: train one here, ~3 minutes)")
    parser.add_argument("--quick", action="store_true", help="a small model and short cells: checks the script works")
    parser.add_argument("--seconds", type=float, default=20.0, help="longest time per cell")
    parser.add_argument("--max-requests", type=int, default=5000, help="most requests per cell")
    parser.add_argument("--soak-seconds", type=float, default=300.0, help="the memory run's length")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    parser.add_argument("--soak-all", action="store_true", help="the memory run for ONNX int8 too")
    parser.add_argument("--no-onnx", action="store_true", help="PyTorch only")
    parser.add_argument("--name", default="bench_serve", help="results/<name>.json")
    args = parser.parse_args()
    args.concurrency, args.sizes = [1, 8, 32, 64], [1, 32]
    if args.quick:
        args.concurrency, args.seconds, args.max_requests = [1, 8], 2.0, 200
        args.soak_seconds, args.sample_every = 4.0, 1.0
    from nlp_transfer.data.assets import default_data_root

    sentences = sst2_dev(default_data_root())[: 128 if args.quick else None]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as temporary:
        scratch = Path(temporary)
        run = args.run or train_quickstart(scratch / "run", 32 if args.quick else None)
        models = {"pytorch": run}
        if not args.no_onnx:
            models["onnx int8"] = int8_export(run, scratch / "export")
        rows: list[dict[str, Any]] = []
        for backend, model in models.items():
            rows += bench_backend(backend, model, sentences, args, scratch)
    checked = targets(rows)
    print("\n".join(checked))
    page = {"page": "sharing", "title": "Serving: nlp-transfer serve against predict --file", "order": 50}
    page["columns"] = [*SHOWN_COLUMNS]
    notes = ("quick check: " if args.quick else "") + "; ".join(checked)
    path = write_results(args.name, rows, notes=notes, on_page=None if args.quick else page)
    print(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
