"""The Prometheus metrics of a serving process (prometheus-client), written by the faces, the micro-batcher and the
state swap, read by `GET /metrics` (rag.serve.http.observe renders requests and latency; see its docstring)."""

from __future__ import annotations

import calendar
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "rag_http_requests_total", "HTTP requests answered, by route template, method and status.", ["route", "method", "status"]
)
LATENCY = Histogram("rag_http_request_seconds", "Time to answer an HTTP request, by route template.", ["route"], buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("rag_batch_size", "Searches per micro-batch.", buckets=(1, 2, 4, 8, 16, 32, 64))
QUEUE_DEPTH = Gauge("rag_batch_queue_depth", "Searches waiting for the micro-batcher.", multiprocess_mode="livesum")
INDEX_INFO = Gauge(
    "rag_index_info", "The served index version (1; a version served before 0).", ["index_version", "engine"], multiprocess_mode="liveall"
)
INDEX_BUILT = Gauge("rag_index_built_timestamp_seconds", "When the served index was built (Unix time).", multiprocess_mode="livemax")
ERRORS = Counter("rag_errors_total", "Errors of the encoder or the search engine answered as 5xx, by kind.", ["kind"])


_SERVED: list[tuple[str, str]] = []  # the labels of the version served before (multiprocess mode cannot clear labels)


def served(index_version: str, engine: str, built_at: str) -> None:
    """Record the index a process serves from now on (called at load and after every swap): value 1, the previous 0."""
    for labels in _SERVED:
        INDEX_INFO.labels(*labels).set(0)
    _SERVED[:] = [(index_version, engine)]
    INDEX_INFO.labels(index_version, engine).set(1)
    try:
        INDEX_BUILT.set(calendar.timegm(time.strptime(built_at, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        pass


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: this process's registry, or every worker's when they share a folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
