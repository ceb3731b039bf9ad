"""Prometheus metrics (prometheus_client), in a registry of the server's own: requests by route and status, request
latency, batch sizes, queue depth and texts predicted. Texts per second is `rate(nlp_transfer_texts_total[1m])` in
Prometheus; the gauge beside it is the model's own speed on its last batch."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: a scraper does not need the time each label first appeared
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nlp_transfer_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "nlp_transfer_request_seconds",
            "HTTP request latency (seconds), by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "nlp_transfer_batch_size", "texts per model batch", ["model"], buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge(
            "nlp_transfer_queue_depth", "texts waiting for the model", ["model"], registry=self.registry
        )
        self.texts = Counter("nlp_transfer_texts", "texts predicted", ["model"], registry=self.registry)
        self.speed = Gauge(
            "nlp_transfer_batch_texts_per_second",
            "the model's speed on its last batch (texts per second of model time)",
            ["model"],
            registry=self.registry,
        )

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def batch(self, model: str, texts: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(texts)
        self.texts.labels(model).inc(texts)
        if seconds > 0:
            self.speed.labels(model).set(texts / seconds)

    def depth(self, model: str, texts: int) -> None:
        self.queue_depth.labels(model).set(texts)

    def text(self) -> bytes:
        return generate_latest(self.registry)
