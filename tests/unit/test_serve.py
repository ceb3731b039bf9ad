"""`nlp-transfer serve`: a real server process on a free loopback port, a real HTTP client (httpx).

One set of tiny trained runs (classification of single texts and of pairs, multi-label, regression, QA, and the
classifier's ONNX int8 export) is served by one server for the module; a second server with a tiny queue and a long
batching wait shows the 503, the drain on SIGTERM and a disconnecting client.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import invoke, user_error, write_recipe, write_sentiment_csv
from tests.unit.labels_data import emotion_rows, write_jsonl
from tests.unit.test_qa import write_qa_recipe

pytestmark = [pytest.mark.subprocess, pytest.mark.heavy]  # server processes; the module's runs take over 20 s

KEY = "k" * 20 + "-serve-test-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
STARTED = re.compile(r"serving .* at http://127\.0\.0\.1:(\d+) ")


def ok(*args: object) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict[str, Path]:
    """name -> a complete tiny run (or an export's ONNX file) of every task."""
    root = tmp_path_factory.mktemp("serve-runs")
    train = {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "logging_steps": 5, "seed": 0, "precision": "fp32"}
    bert = tiny_models["bert"]
    write_sentiment_csv(root / "train.csv", copies=2)
    pairs = ["question,answer,label"] + [f"q{i} great,a{i} loved it,yes" for i in range(8)]
    pairs += [f"q{i} awful,a{i} hated it,no" for i in range(8)]
    (root / "pairs.csv").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    write_jsonl(root / "emotions.jsonl", emotion_rows(24, seed=0))
    recipes = {
        "sentiment": write_recipe(root / "sentiment", bert, root / "train.csv", train=train),
        "pairs": write_recipe(
            root / "pairs", bert, root / "pairs.csv", task={"text": "question", "text_pair": "answer"}, train=train
        ),
        "emotions": write_recipe(
            root / "emotions",
            bert,
            root / "emotions.jsonl",
            task={"name": "multi_label", "label": "labels"},
            data={"eval": str(root / "emotions.jsonl")},
            train=train,
        ),
        "scores": write_recipe(
            root / "scores",
            bert,
            root / "emotions.jsonl",
            task={"name": "regression", "label": ["score", "calm"]},
            train=train,
        ),
        "qa": write_qa_recipe(root / "qa", bert, {"name": "full"}),
    }
    found = {}
    for name, recipe in recipes.items():
        ok("run", recipe)
        found[name] = recipe.parent / "run"
    ok("export", found["sentiment"], "--output-dir", root / "export", "--quantize", "int8")
    found["int8"] = root / "export" / "model.int8.onnx"
    return found


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)

    def post(self, name: str, inputs: Any, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/models/{name}/predict", json={"inputs": inputs}, timeout=60, **kwargs)


def start_server(*args: object, env: dict[str, str] | None = None) -> Server:
    command = [sys.executable, "-m", "nlp_transfer", "serve", *map(str, args), "--port", "0", "--precision", "fp32"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    lines: list[str] = []
    found: list[int] = []
    seen = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if (match := STARTED.search(line)) and not found:
                found.append(int(match.group(1)))
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    seen.wait(240)
    assert found, f"the server did not start:\n{''.join(lines)}"
    return Server(process, f"http://127.0.0.1:{found[0]}", lines)


def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(60)


@pytest.fixture(scope="module")
def server(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# one key a line\n{KEY}\n", encoding="utf-8")
    names = [f"--name={name}={path}" for name, path in runs.items()]
    limits = ["--max-inputs", 16, "--max-chars", 2000, "--max-body-bytes", 20000, "--max-wait-ms", 20, "--strict"]
    limits += ["--cors-origin", "http://example.org"]
    started = start_server(*names, "--api-keys-file", keys, *limits)
    yield started
    stop(started)


def predicted(run: Path, rows: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    """What `nlp-transfer predict --file` prints for these rows."""
    file = tmp_path / f"rows-{len(list(tmp_path.iterdir()))}.jsonl"
    write_jsonl(file, rows)
    result = ok("predict", run, "--file", file, "--precision", "fp32")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


TEXTS = ["great movie 1", "a bore", "loved it and the acting, all of it", "", "dull and lifeless painful mess 4"]
QA = [
    {"question": "Who directed it?", "context": "The film was directed by Jane Campion and shot in New Zealand."},
    {"question": "When did stocks fall?", "context": "Stocks fell sharply on Tuesday as investors weighed figures."},
]
INPUTS = {
    "sentiment": [{"text": text} for text in TEXTS],
    "int8": [{"text": text} for text in TEXTS],
    "pairs": [{"question": f"q{i} great", "answer": text} for i, text in enumerate(TEXTS)],
    "emotions": [{"text": text} for text in ["happy glad the day", "furious and scared", "went on as days do"]],
    "scores": [{"text": text} for text in ["happy glad the day", "furious and scared"]],
    "qa": QA,
}


def test_every_task_answers_exactly_what_predict_prints(server: Server, runs: dict[str, Path], tmp_path: Path) -> None:
    for name, rows in INPUTS.items():
        response = server.post(name, rows, headers=HEADERS)
        assert response.status_code == 200, response.text
        assert response.json() == {"model": name, "outputs": predicted(runs[name], rows, tmp_path)}, name
    # A text model also takes plain strings, and the trained column names or the roles' own names.
    strings = server.post("sentiment", TEXTS, headers=HEADERS).json()["outputs"]
    assert strings == server.post("sentiment", INPUTS["sentiment"], headers=HEADERS).json()["outputs"]
    by_role = [{"text": row["question"], "text_pair": row["answer"]} for row in INPUTS["pairs"]]
    named = server.post("pairs", INPUTS["pairs"], headers=HEADERS).json()["outputs"]
    # The same predictions; an input's own fields come back as predict --file keeps a row's columns.
    assert server.post("pairs", by_role, headers=HEADERS).json()["outputs"] == [
        {k: v for k, v in row.items() if k not in ("question", "answer")} for row in named
    ]
    assert all(row["question"].startswith("q") and "answer" in row for row in named)


def test_models_health_ready_openapi_and_the_startup_line(server: Server) -> None:
    listed = httpx.get(f"{server.url}/v1/models", headers=HEADERS).json()["models"]
    by_name = {model["name"]: model for model in listed}
    assert set(by_name) == set(INPUTS)
    assert by_name["sentiment"]["task"] == "classification" and by_name["sentiment"]["labels"] == [
        "negative",
        "positive",
    ]
    assert set(by_name["emotions"]["labels"]) == {"joy", "anger", "fear"}
    assert by_name["scores"]["labels"] == ["score", "calm"] and by_name["qa"]["labels"] == []
    assert by_name["int8"]["precision"] == "onnx int8" and by_name["sentiment"]["precision"] == "fp32 (pytorch)"
    assert by_name["pairs"]["inputs"] == {"text": ["question", "text"], "text_pair": ["answer", "text_pair"]}
    assert httpx.get(f"{server.url}/health").json() == {"status": "alive"}
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}
    document = httpx.get(f"{server.url}/openapi.json").json()
    operation = document["paths"]["/v1/models/{name}/predict"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictRequest")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PredictResponse")
    assert {"400", "401", "404", "413", "422", "503", "504"} <= set(operation["responses"])
    line = next(line for line in server.stderr if line.startswith("serving "))
    assert "sentiment (classification" in line and "cpu fp32" in line and "onnx int8" in line and "API keys: 1" in line


def test_concurrent_clients_each_get_their_own_answers(server: Server) -> None:
    texts = [f"{word} movie {i}" for i in range(48) for word in ("great",) if i % 2] + [
        f"awful acting and a long dull plot {i}" for i in range(0, 48, 2)
    ]
    alone = {text: server.post("sentiment", [text], headers=HEADERS).json()["outputs"][0] for text in texts[:6]}
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda text: (text, server.post("sentiment", [text], headers=HEADERS)), texts))
    for text, response in answers:
        assert response.status_code == 200
        row = response.json()["outputs"][0]
        assert row["text"] == text  # each caller gets its own row
        if text in alone:  # batched with others (other padding), the same prediction up to float rounding
            assert row["label"] == alone[text]["label"]
            assert abs(row["probability"] - alone[text]["probability"]) < 1e-4
    batches = metric_samples(server, "nlp_transfer_batch_size")
    assert batches[("nlp_transfer_batch_size_sum", (("model", "sentiment"),))] >= len(texts)
    count = batches[("nlp_transfer_batch_size_count", (("model", "sentiment"),))]
    assert count < batches[("nlp_transfer_batch_size_sum", (("model", "sentiment"),))]  # some batches held several


def metric_samples(server: Server, family: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics", headers=HEADERS).text
    found = {}
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            for sample in metric.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


BAD = [  # (model, body as sent, status, a fragment of the one sentence)
    ("sentiment", b'{"inputs": ["a"', 400, "not valid JSON"),
    ("sentiment", b"[1, 2]", 422, "must be a JSON object"),
    ("sentiment", b'{"input": ["a"]}', 422, "'inputs'"),
    ("sentiment", b'{"inputs": []}', 422, "inputs is empty"),
    ("sentiment", b'{"inputs": [3]}', 422, "inputs[0] must be a string or an object"),
    ("sentiment", b'{"inputs": [{"text": 5}]}', 422, "inputs[0].text must be a string"),
    ("sentiment", b'{"inputs": ["a"], "extra": 1}', 422, "unknown field 'extra'"),
    ("nope", b'{"inputs": ["a"]}', 404, "no model named 'nope'"),
    ("sentiment", json.dumps({"inputs": QA}).encode(), 422, "inputs[0] has no field 'text'"),
    ("qa", b'{"inputs": [{"text": "what?"}]}', 422, "inputs[0] has no field 'question'"),
    ("qa", b'{"inputs": ["what?"]}', 422, "inputs[0] is a string"),
    ("qa", b'{"inputs": [{"question": " ", "context": "x"}]}', 422, "must not be empty"),
    ("pairs", b'{"inputs": ["only one text"]}', 422, "inputs[0] is a string"),
    ("sentiment", json.dumps({"inputs": ["a"] * 17}).encode(), 413, "the limit is 16 (--max-inputs)"),
    ("sentiment", json.dumps({"inputs": ["a" * 2001]}).encode(), 413, "2001 characters; the limit is 2000"),
    ("sentiment", json.dumps({"inputs": ["ab " * 8000]}).encode(), 413, "over 20000 bytes"),
    ("sentiment", json.dumps({"inputs": ["short", "great " * 40]}).encode(), 422, "inputs[1] is 42 tokens; this"),
]


@pytest.mark.parametrize(("model", "body", "status", "fragment"), BAD, ids=[f"{b[2]}-{b[3][:24]}" for b in BAD])
def test_every_bad_request_gets_its_4xx_in_one_sentence(
    server: Server, model: str, body: bytes, status: int, fragment: str
) -> None:
    response = httpx.post(
        f"{server.url}/v1/models/{model}/predict",
        content=body,
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and fragment in error["error"], error
    assert "\n" not in error["error"] and "Traceback" not in error["error"] and "/tmp" not in error["error"]


def test_a_streamed_body_over_the_limit_and_wrong_methods(server: Server) -> None:
    chunks = (b'{"inputs": ["' + b"a" * 4000 + b'"]' for _ in range(8))  # no Content-Length: chunked
    response = httpx.post(f"{server.url}/v1/models/sentiment/predict", content=chunks, headers=HEADERS)
    assert response.status_code == 413 and "over 20000 bytes" in response.json()["error"]
    response = httpx.get(f"{server.url}/v1/models/sentiment/predict", headers=HEADERS)
    assert response.status_code == 405 and response.json() == {"error": "GET is not allowed here"}
    assert httpx.get(f"{server.url}/nothing").status_code == 404


def test_keys_are_enforced_and_never_logged(server: Server) -> None:
    url = f"{server.url}/v1/models/sentiment/predict"
    body = {"inputs": ["a"]}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer " + "x" * len(KEY)}).status_code == 401
    assert httpx.post(url, json=body, headers={"X-API-Key": KEY[:-1]}).status_code == 401
    assert httpx.post(url, json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200  # probes need no key
    refused = httpx.post(url, json=body)
    assert refused.json() == {"error": "a valid API key is required (Authorization: Bearer KEY)"}
    assert not any(KEY in line for line in server.stderr)


def test_metrics_parse_as_prometheus_text(server: Server) -> None:
    server.post("sentiment", ["one more"], headers=HEADERS)
    httpx.post(f"{server.url}/v1/models/nope/predict", json={"inputs": ["a"]}, headers=HEADERS)
    requests = metric_samples(server, "nlp_transfer_requests")
    route = "/v1/models/{name}/predict"
    assert requests[("nlp_transfer_requests_total", (("route", route), ("status", "200")))] >= 1
    assert requests[("nlp_transfer_requests_total", (("route", route), ("status", "404")))] >= 1
    assert (
        metric_samples(server, "nlp_transfer_queue_depth")[("nlp_transfer_queue_depth", (("model", "sentiment"),))] == 0
    )
    assert metric_samples(server, "nlp_transfer_texts")[("nlp_transfer_texts_total", (("model", "sentiment"),))] >= 1
    latency = metric_samples(server, "nlp_transfer_request_seconds")
    assert latency[("nlp_transfer_request_seconds_count", (("route", route),))] >= 2
    assert any("POST /v1/models/sentiment/predict 200" in line and " ms" in line for line in server.stderr)


@pytest.fixture(scope="module")
def slow_server(runs: dict[str, Path]) -> Iterator[Server]:
    """Batches wait up to 1.5 s for 64 texts, and the queue holds 4: requests pile up and are refused."""
    started = start_server(runs["sentiment"], "--max-batch", 64, "--max-wait-ms", 1500, "--max-queue", 4)
    yield started
    if started.process.poll() is None:
        stop(started)


def test_a_full_queue_answers_503_with_retry_after(slow_server: Server) -> None:
    with ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(slow_server.post, "run", ["great movie", "a bore"]) for _ in range(2)]
        time.sleep(0.5)  # both are queued (4 texts), waiting for the batch to fill
        refused = slow_server.post("run", ["one more"])
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert "full queue" in refused.json()["error"]
        assert all(future.result().status_code == 200 for future in waiting)
    too_many = slow_server.post("run", ["a"] * 5)  # more than the whole queue holds: never worth a retry
    assert too_many.status_code == 413 and "the queue holds 4" in too_many.json()["error"]


def test_a_client_that_disconnects_does_not_disturb_the_others(slow_server: Server) -> None:
    host, port = slow_server.url.removeprefix("http://").split(":")
    body = json.dumps({"inputs": ["great movie"]}).encode()
    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(slow_server.post, "run", ["loved it"])
        for cut in (len(body) // 2, len(body)):  # gone halfway through its body, and right after sending it
            with socket.create_connection((host, int(port))) as raw:
                head = f"POST /v1/models/run/predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                raw.sendall(head.encode() + body[:cut])
        answer = other.result()
    assert answer.status_code == 200 and answer.json()["outputs"][0]["text"] == "loved it"
    assert slow_server.post("run", ["still here"]).status_code == 200
    assert not any("internal error" in line or "Traceback" in line for line in slow_server.stderr), slow_server.stderr


def test_sigterm_drains_in_flight_requests_and_exits_0(slow_server: Server) -> None:
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(slow_server.post, "run", ["great movie", "a bore"])
        time.sleep(0.5)  # it waits in the batcher (1.5 s)
        slow_server.process.send_signal(signal.SIGTERM)
        answer = in_flight.result()
    assert answer.status_code == 200 and [row["text"] for row in answer.json()["outputs"]] == ["great movie", "a bore"]
    assert slow_server.process.wait(60) == 0
    assert slow_server.stderr[-1].strip() == "stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{slow_server.url}/health")


def test_serve_refuses_bad_settings_in_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    user_error(invoke("serve", tmp_path / "missing"), "no such folder")
    user_error(invoke("serve", "--name", "a b=x"), "cannot name a model in a URL")
    user_error(invoke("serve", runs["sentiment"], "--name", f"run={runs['pairs']}"), "is served already")
    short = tmp_path / "keys.txt"
    short.write_text("secret\n", encoding="utf-8")
    user_error(invoke("serve", runs["sentiment"], "--api-keys-file", short), "key 1 has 6 characters")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        user_error(invoke("serve", runs["sentiment"], "--port", taken.getsockname()[1]), "cannot listen there")
    os.environ["WORLD_SIZE"] = "2"
    try:
        user_error(invoke("serve", runs["sentiment"]), "without accelerate launch")
    finally:
        del os.environ["WORLD_SIZE"]


def test_cors_only_for_the_origin_allowed(server: Server) -> None:
    allowed = server.post("sentiment", ["a"], headers={**HEADERS, "Origin": "http://example.org"})
    assert allowed.headers["access-control-allow-origin"] == "http://example.org"
    other = server.post("sentiment", ["a"], headers={**HEADERS, "Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


def test_predict_and_evaluate_read_an_onnx_export(runs: dict[str, Path], tmp_path: Path) -> None:
    """The export's model.onnx gives PyTorch's predictions (float rounding apart); evaluate takes it too."""
    rows = [{"text": text} for text in TEXTS]
    onnx = predicted(runs["int8"].with_name("model.onnx"), rows, tmp_path)
    torch_rows = predicted(runs["sentiment"], rows, tmp_path)
    for a, b in zip(onnx, torch_rows, strict=True):
        assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 1e-5
    data = tmp_path / "eval.csv"
    write_sentiment_csv(data, copies=1)
    scores = json.loads(ok("evaluate", runs["int8"], "--data", data).stdout)
    assert scores["rows"] == 12 and 0.0 <= scores["metrics"]["accuracy"] <= 1.0
    assert scores["runtime"] == "cpu onnx int8"
    user_error(invoke("predict", runs["int8"].with_name("model.fp16.onnx"), "a"), "not an ONNX file nlp-transfer")


@pytest.fixture(scope="module")
def served_sentiment(runs: dict[str, Path]) -> Any:
    """The sentiment model as the server loads it, in this process (for faults no real request can cause)."""
    from nlp_transfer.core.hardware import Runtime
    from nlp_transfer.serve.models import load_model
    from nlp_transfer.use.trained import open_trained

    return load_model("sentiment", open_trained(runs["sentiment"]), Runtime.choose("cpu", "fp32"), 32)


def in_process_app(model: Any, timeout: float = 30.0) -> Any:
    from fastapi.testclient import TestClient

    from nlp_transfer.serve.app import Served, create_app
    from nlp_transfer.serve.batching import BatchSettings
    from nlp_transfer.serve.limits import Limits
    from nlp_transfer.serve.metrics import Metrics

    served = Served({"sentiment": model}, Limits(timeout=timeout), BatchSettings(), [], [])
    return TestClient(create_app(served, Metrics()), raise_server_exceptions=False)


def test_a_server_error_is_logged_under_an_id_and_the_client_gets_only_the_id(
    served_sentiment: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise RuntimeError("boom in /secret/path/model.py (torch 9.9)")

    monkeypatch.setattr(served_sentiment.predictor, "predict_batch", broken)
    with in_process_app(served_sentiment) as client:
        response = client.post("/v1/models/sentiment/predict", json={"inputs": ["a"]})
    assert response.status_code == 500
    message = response.json()["error"]
    incident = re.fullmatch(r"internal server error \(id ([0-9a-f]{12})\); the server's log has the details", message)
    assert incident is not None, message
    logged = [record for record in caplog.records if incident.group(1) in record.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None and "boom" in str(logged[0].exc_info[1])


def test_a_request_not_answered_in_time_gets_504_and_the_server_goes_on(
    served_sentiment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = served_sentiment.predictor.predict_batch

    def slow(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(item["text"] == "slow" for item in batch):
            time.sleep(1.0)
        return real(batch)

    monkeypatch.setattr(served_sentiment.predictor, "predict_batch", slow)
    with in_process_app(served_sentiment, timeout=0.3) as client:
        response = client.post("/v1/models/sentiment/predict", json={"inputs": ["slow"]})
        assert response.status_code == 504 and response.json() == {"error": "not answered within 0.3 s (--timeout)"}
        time.sleep(1.0)  # the worker finishes the slow batch (its result goes to no one)
        assert client.post("/v1/models/sentiment/predict", json={"inputs": ["fast"]}).status_code == 200


def test_an_onnx_export_applies_a_label_prior_once(runs: dict[str, Path], tmp_path: Path) -> None:
    """export --onnx puts label_prior.json's correction in the graph: predict on the ONNX file must not apply it
    again (a strong correction makes a double application visible in every probability)."""
    corrected = tmp_path / "corrected"
    shutil.copytree(runs["sentiment"], corrected)
    prior = {"labels": ["negative", "positive"], "logit_scale": 3.0, "logit_bias": [1.5, -0.5]}
    (corrected / "label_prior.json").write_text(json.dumps(prior), encoding="utf-8")
    ok("export", corrected, "--output-dir", tmp_path / "export", "--onnx")
    rows = [{"text": text} for text in TEXTS]
    torch_rows = predicted(corrected, rows, tmp_path)
    onnx_rows = predicted(tmp_path / "export" / "model.onnx", rows, tmp_path)
    for a, b in zip(onnx_rows, torch_rows, strict=True):
        assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 1e-5
