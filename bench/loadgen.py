"""A closed-loop load generator for a served index, and a loopback server to point it at.

`run_load(base_url, queries, clients, seconds)` starts `clients` threads, each with its own HTTP
connection, sending `POST /search` back to back until the time is up, and reports latency
percentiles (milliseconds, nearest rank), throughput, errors and the index versions that answered.
The tests run a short version (a few clients, a few seconds); the benchmark runs 32 clients x 60 s.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def run_load(
    base_url: str, queries: Sequence[str], clients: int = 8, seconds: float = 5.0, k: int = 10, timeout: float = 30.0
) -> dict[str, Any]:
    """Drive `POST {base_url}/search` with `clients` concurrent clients for `seconds`.

    Returns {p50, p99, mean, max (ms), rps, requests, errors, error_samples, versions, clients, seconds}:
    an error is a non-200 answer or a failed connection; `versions` counts answers per index_version.
    """
    import httpx

    if not queries:
        raise ValueError("run_load needs at least one query")
    lock = threading.Lock()
    latencies: list[float] = []
    versions: Counter[str] = Counter()
    errors: list[str] = []
    start_gate = threading.Barrier(clients + 1, timeout=60)  # all clients connected-ready, then the clock starts
    deadline = 0.0

    def client(n: int) -> None:
        mine: list[float] = []
        seen: Counter[str] = Counter()
        failed: list[str] = []
        with httpx.Client(base_url=base_url, timeout=timeout) as http:
            start_gate.wait()
            i = n
            while time.perf_counter() < deadline:
                query = queries[i % len(queries)]
                i += clients
                sent = time.perf_counter()
                try:
                    response = http.post("/search", json={"query": query, "k": k})
                except httpx.HTTPError as exc:
                    failed.append(f"{type(exc).__name__}: {exc}")
                    continue
                mine.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    failed.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                seen[response.json()["index_version"]] += 1
        with lock:
            latencies.extend(mine)
            versions.update(seen)
            errors.extend(failed)

    threads = [threading.Thread(target=client, args=(n,), name=f"load-{n}", daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start_gate.wait()
    for thread in threads:
        thread.join(seconds + timeout + 5)
    elapsed = time.perf_counter() - began
    latencies.sort()
    done = len(latencies) + sum(1 for e in errors if not e[:3].isdigit())
    return {
        "clients": clients,
        "seconds": round(elapsed, 3),
        "requests": done,
        "errors": len(errors),
        "error_samples": errors[:5],
        "rps": round(done / elapsed, 2) if elapsed else 0.0,
        "p50": round(percentile(latencies, 50), 2),
        "p99": round(percentile(latencies, 99), 2),
        "mean": round(sum(latencies) / len(latencies), 2) if latencies else 0.0,
        "max": round(latencies[-1], 2) if latencies else 0.0,
        "versions": dict(versions),
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 120.0) -> Iterator[str]:
    """Run `app` under uvicorn in a background thread; yields its base URL, stops it on exit."""
    import uvicorn

    from rag.serve.http.server import config as server_config

    port = port or free_port(host)
    server = uvicorn.Server(server_config(app, host, port, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    started = time.perf_counter()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} did not start (see the log above)")
        if time.perf_counter() - started > startup_timeout:
            server.should_exit = True
            raise TimeoutError(f"the server on {host}:{port} did not start within {startup_timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
