"""Issue 26, serving: probes that tell the truth, recovery from a failed first load, admin errors as 4xx/507, metrics,
request ids, security headers, timeouts for slow connections, and a bounded Milvus (fake encoder, real HTTP)."""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.loadgen import serve_in_thread
from rag.config import BuildSettings, Settings
from rag.embedding.fake import FakeEncoder
from rag.errors import EngineUnavailable
from rag.index.build import build_index
from rag.index.milvus.client import Gate
from rag.index.store import CHUNKS, current_build
from rag.serve.http import create_app
from rag.serve.http.observe import JsonFormatter, RequestIdFilter
from rag.serve.state import State
from support import SHELVES, small_library

TOKEN = "an-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(client: TestClient, path: str, status: int, timeout: float = 60.0, state: str | None = None) -> httpx.Response:
    """The first answer of `path` with this status code (and /health's `state`: "loading" is a 503 too)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path)
        if (answer.status_code == status and (state is None or answer.json().get("status") == state)) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@pytest.fixture()
def small_index(tmp_path):
    library = small_library(tmp_path / "lib")
    index_dir = tmp_path / "index"
    build_index(BuildSettings(library, index_dir), FakeEncoder())
    return library, index_dir


def test_probes_tell_a_load_balancer_the_truth(small_index):
    library, index_dir = small_index
    chunks = current_build(index_dir) / CHUNKS
    chunks.write_text("damaged\n", encoding="utf-8")
    settings = Settings(index_dir=index_dir, library=library, admin_token=TOKEN)
    with TestClient(create_app(settings, embedder=FakeEncoder(), background_load=True)) as client:
        error = wait_for(client, "/health", 503, state="error")
        assert error.status_code == 503 and error.json()["status"] == "error" and error.headers["Retry-After"]
        assert client.get("/health/live").status_code == 200 and client.get("/health/live").json() == {"status": "alive"}
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False and "chunks.jsonl" in ready.json()["reason"]
        assert ready.headers["Retry-After"]
        assert client.post("/search", json={"query": SHELVES}).status_code == 503


def test_a_failed_first_load_recovers_through_reindex_and_reload_without_a_restart(small_index):
    library, index_dir = small_index
    (current_build(index_dir) / CHUNKS).unlink()
    settings = Settings(index_dir=index_dir, library=library, admin_token=TOKEN)
    with TestClient(create_app(settings, embedder=FakeEncoder(), background_load=True)) as client:
        assert wait_for(client, "/health", 503, state="error").json()["status"] == "error"
        answer = client.post("/admin/reindex", headers=AUTH)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["previous_version"] is None and body["changed"] is True and "chunks.jsonl" in body["build"]["repaired"]
        assert client.get("/health").status_code == 200 and client.get("/health/ready").json()["ready"] is True
        assert client.post("/search", json={"query": "honey bees", "k": 1}).json()["hits"][0]["slug"] == "bees"
        assert client.post("/admin/reload", headers=AUTH).json()["changed"] is False


def test_reload_after_a_failed_first_load_serves_a_build_made_elsewhere(small_index):
    library, index_dir = small_index
    (current_build(index_dir) / CHUNKS).unlink()
    settings = Settings(index_dir=index_dir, admin_token=TOKEN)
    with TestClient(create_app(settings, embedder=FakeEncoder(), background_load=True)) as client:
        assert wait_for(client, "/health", 503, state="error").json()["status"] == "error"
        build_index(BuildSettings(library, index_dir), FakeEncoder())  # `rag index` run on the host
        answer = client.post("/admin/reload", headers=AUTH)
        assert answer.status_code == 200 and answer.json()["previous_version"] is None
        assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(("code", "status"), [(errno.ENOSPC, 507), (errno.EROFS, 507), (errno.EACCES, 507)])
def test_reindex_storage_failures_are_507_and_the_previous_index_keeps_serving(small_index, monkeypatch, code, status):
    library, index_dir = small_index
    (library / "bees.md").write_text((library / "bees.md").read_text() + "\nMore.\n", encoding="utf-8")
    state = State.load(index_dir, FakeEncoder())
    settings = Settings(index_dir=index_dir, admin_token=TOKEN)
    with TestClient(create_app(settings, state=state)) as client:

        def failing(*args, **kwargs):
            raise OSError(code, "simulated", str(index_dir / "builds"))

        monkeypatch.setattr("rag.index.store.os.rename", failing)
        answer = client.post("/admin/reindex", headers=AUTH)
        assert answer.status_code == status and answer.json()["detail"].endswith("still serving the previous index")
        assert client.get("/health").json()["index_version"] == state.version


def test_reindex_refuses_to_shrink_unless_asked_and_an_empty_library_is_422(small_index, tmp_path):
    library, index_dir = small_index
    state = State.load(index_dir, FakeEncoder())
    for name in ("bikes.md", "bread.md"):
        (library / name).unlink()
    with TestClient(create_app(Settings(index_dir=index_dir, library=library, admin_token=TOKEN), state=state)) as client:
        refused = client.post("/admin/reindex", headers=AUTH)
        assert refused.status_code == 409 and "refusing to drop 2 of 3 patterns" in refused.json()["detail"]
        assert client.post("/admin/reindex", headers=AUTH, json={"allow_shrink": "yes"}).status_code == 422  # strict
        allowed = client.post("/admin/reindex", headers=AUTH, json={"allow_shrink": True})
        assert allowed.status_code == 200 and allowed.json()["build"]["patterns"] == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.md").write_text("not a pattern\n", encoding="utf-8")
    with TestClient(create_app(Settings(index_dir=index_dir, library=empty, admin_token=TOKEN), state=state)) as client:
        answer = client.post("/admin/reindex", headers=AUTH)
        assert answer.status_code == 422 and "could be loaded" in answer.json()["detail"]


def test_metrics_request_ids_and_security_headers(small_index):
    _, index_dir = small_index
    state = State.load(index_dir, FakeEncoder())
    with TestClient(create_app(Settings(index_dir=index_dir), state=state)) as client:
        given = client.post("/search", json={"query": "honey"}, headers={"X-Request-ID": "trace-42"})
        assert given.headers["x-request-id"] == "trace-42" and given.headers["x-content-type-options"] == "nosniff"
        made = client.get("/patterns/bees")
        assert len(made.headers["x-request-id"]) == 32 and made.headers["x-content-type-options"] == "nosniff"
        odd = client.get("/facets", headers={"X-Request-ID": "x" * 500})  # not echoed at any length: a fresh id instead
        assert len(odd.headers["x-request-id"]) == 32
        assert "frame-ancestors 'none'" in client.get("/docs").headers["content-security-policy"]
        client.post("/search", json={"query": ""})
        text = client.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'rag_http_requests_total{method="POST",route="/search",status="422"}' in text
    assert 'rag_http_request_seconds_bucket{le="0.005",route="/patterns/{slug}"}' in text
    assert f'rag_index_info{{engine="embedded",index_version="{state.version}"}} 1.0' in text
    assert "rag_index_built_timestamp_seconds" in text and "rag_batch_size_bucket" in text and "rag_batch_queue_depth" in text


def test_json_logs_carry_the_request_id():
    from rag.serve.http.observe import REQUEST_ID

    record = logging.LogRecord("rag.test", logging.INFO, __file__, 1, "searched %d patterns", (3,), None)
    token = REQUEST_ID.set("abc123")
    try:
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "abc123" and line["message"] == "searched 3 patterns" and line["level"] == "INFO"


def test_unknown_filter_values_are_echoed_only_shortly(small_index):
    _, index_dir = small_index
    state = State.load(index_dir, FakeEncoder())
    with TestClient(create_app(Settings(index_dir=index_dir), state=state)) as client:
        detail = client.post("/search", json={"query": "honey", "filters": {"domain": "z" * 5000}}).json()["detail"]
    assert len(detail) < 400 and "zzz...z'" in detail


def test_stalled_connections_are_closed(small_index, monkeypatch):
    """A client that never finishes its request headers, or stalls its body, is not kept open forever."""
    import rag.serve.http.limits as limits
    import rag.serve.http.server as server

    monkeypatch.setattr(server, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(limits, "BODY_TIMEOUT_S", 0.5)
    _, index_dir = small_index
    state = State.load(index_dir, FakeEncoder())
    with serve_in_thread(create_app(Settings(index_dir=index_dir), state=state)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            started = time.monotonic()
            assert slow.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 4
        with socket.create_connection((host, int(port)), timeout=5) as stalled:
            stalled.sendall(b'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"q')
            answer = b""
            while b"stalled" not in answer and (more := stalled.recv(2000)):  # headers and body may come in two reads
                answer += more
            assert answer.startswith(b"HTTP/1.1 408") and b"the request body stalled" in answer
        assert httpx.get(url + "/health/live").status_code == 200  # the server itself is fine


def test_a_hung_milvus_ties_up_few_threads_and_the_breaker_answers_at_once():
    """A fake Milvus call that hangs for its timeout and then fails, as a hung server does (issue 26)."""
    gate = Gate(limit=2, failures=3, open_s=30.0, wait_s=0.05)
    inside, most = 0, 0
    lock = threading.Lock()

    def hung():
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.3)
        with lock:
            inside -= 1
        raise EngineUnavailable("deadline exceeded", "engine")

    outcomes: list[float] = []

    def call():
        started = time.monotonic()
        try:
            gate.run("http://milvus:19530", hung)
        except EngineUnavailable:
            outcomes.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most <= 2 and len(outcomes) == 12
    assert sum(1 for s in outcomes if s < 0.2) >= 8  # the calls beyond the limit failed at once
    assert not gate.open  # two calls failed in a row so far; refusals at the limit do not count
    with pytest.raises(EngineUnavailable, match="deadline exceeded"):
        gate.run("http://milvus:19530", hung)  # the third failure in a row opens the breaker
    assert gate.open
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="failed 3 calls in a row"):
        gate.run("http://milvus:19530", lambda: pytest.fail("the breaker is open: no call may reach Milvus"))
    assert time.monotonic() - started < 0.05


HANG_S = 3.0  # how long the fake Milvus hangs before its call fails (pymilvus's timeout: RAG_MILVUS_TIMEOUT_S, 3 s)


def test_a_hung_engine_slows_only_its_own_routes(small_index):
    """Searches through a hung, gated engine answer 503 quickly while /health/live and pattern reads stay fast."""
    _, index_dir = small_index
    state = State.load(index_dir, FakeEncoder())
    gate = Gate(limit=2, failures=3, open_s=30.0, wait_s=0.05)
    real_dense = state.index.engine.dense

    def hung_dense(*args, **kwargs):
        def call():
            time.sleep(HANG_S)
            raise EngineUnavailable("deadline exceeded", "engine")

        return gate.run("http://milvus:19530", call) or real_dense(*args, **kwargs)

    state.index.engine.dense = hung_dense  # the embedded engine standing in for a gated, hung Milvus
    with serve_in_thread(create_app(Settings(index_dir=index_dir, batch_max=1), state=state)) as url:
        codes: list[int] = []

        def search():
            codes.append(httpx.post(url + "/search", json={"query": "honey"}, timeout=30).status_code)

        threads = [threading.Thread(target=search) for _ in range(24)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert httpx.get(url + "/health/live", timeout=5).status_code == 200
        assert httpx.get(url + "/patterns/bees", timeout=5).status_code == 200
        fast = time.monotonic() - started
        for t in threads:
            t.join(30)
    assert set(codes) == {503} and len(codes) == 24
    assert fast < HANG_S / 2  # unbounded, the hung calls took every server thread and these waited behind them
