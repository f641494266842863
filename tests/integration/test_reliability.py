"""Load, live reindex and reload, crash safety while serving, and security, against real servers on loopback.

Servers run under uvicorn on 127.0.0.1 with a free port (`rag.loadtest.serve_in_thread`) or through
`rag serve` as a subprocess; every wait is bounded.
"""

from __future__ import annotations

import hmac
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.loadgen import free_port, percentile, run_load, serve_in_thread
from rag.config import BuildSettings, Settings
from rag.errors import QueryError
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.index.store import current_build
from rag.serve import service
from rag.serve.http import create_app
from rag.serve.state import State
from support import SHELVES, front_matter, small_library, topic_body, write_pattern

REPO = Path(__file__).resolve().parents[2]
RAG = str(Path(sys.executable).parent / "rag")
TOKEN = "s3cret-admin-token"
EDITED = "pull-based-replenishment"
QUERIES = [
    SHELVES,
    "we keep running out of things",
    "Open Book Management",
    "how do we share financial information with staff",
    "meetings drag on and decide nothing",
    "too much work in progress",
    "checklists for routine tasks",
    "deliver in smaller batches",
]


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def state(patterns_index_dir, embedder) -> State:
    """The session index of patterns/, loaded once for the apps of this module (read-only)."""
    return State.load(patterns_index_dir, embedder)


# -- load ---------------------------------------------------------------------------------------
def test_load_8_clients_for_5_seconds_has_no_errors(patterns_index_dir, state):
    with serve_in_thread(create_app(Settings(index_dir=patterns_index_dir), state=state)) as base:
        report = run_load(base, QUERIES, clients=8, seconds=5)
    figures = f"p50 {report['p50']} ms, p99 {report['p99']} ms, {report['rps']} req/s, {report['requests']} requests"
    assert report["errors"] == 0, f"{report['error_samples']} ({figures})"
    assert report["requests"] >= 8, figures
    assert report["versions"] == {state.version: report["requests"]}, figures
    assert 0 < report["p50"] <= report["p99"] <= report["max"], figures
    print(f"\nload, 8 clients x 5 s: {figures}")


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100), percentile([7.0], 99), percentile([], 50)) == (
        50,
        99,
        100,
        7.0,
        0.0,
    )


# -- live reindex and reload --------------------------------------------------------------------
@pytest.fixture()
def library_copy(tmp_path, patterns_index_dir, embedder, embedding_cache_dir):
    """A copy of patterns/ with its own index (vectors from the session cache, so nothing is encoded)."""
    library = shutil.copytree(REPO / "patterns", tmp_path / "library")
    index_dir = tmp_path / "index"
    build_index(BuildSettings(library, index_dir, cache_dir=embedding_cache_dir), embedder)
    return library, index_dir


def edit_summary(library: Path) -> None:
    path = library / f"{EDITED}.md"
    text = path.read_text(encoding="utf-8")
    assert "  Stock is reordered only when" in text
    path.write_text(
        text.replace("  Stock is reordered only when", "  Stock (the zebra-ledger rule) is reordered only when"), encoding="utf-8"
    )


def test_reindex_while_queries_run_swaps_versions_without_a_failed_request(library_copy, embedder, embedding_cache_dir):
    library, index_dir = library_copy
    settings = Settings(index_dir=index_dir, library=library, cache_dir=embedding_cache_dir, admin_token=TOKEN)
    records: list[tuple[float, str, int, str | None, bool | None]] = []  # (sent, kind, status, version, new summary?)
    failures: list[str] = []
    stop = threading.Event()

    def query(n: int, base: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            i = n
            while not stop.is_set():
                i += 1
                sent = time.perf_counter()
                try:
                    if i % 2:
                        r = http.post("/search", json={"query": QUERIES[i % len(QUERIES)], "k": 5})
                        records.append((sent, "search", r.status_code, r.json().get("index_version"), None))
                    else:
                        r = http.get(f"/patterns/{EDITED}")
                        records.append(
                            (
                                sent,
                                "pattern",
                                r.status_code,
                                r.json().get("index_version"),
                                "zebra-ledger" in r.json()["pattern"]["summary"],
                            )
                        )
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

    with serve_in_thread(create_app(settings, embedder=embedder)) as base:
        old = httpx.get(f"{base}/health").json()["index_version"]
        edit_summary(library)
        threads = [threading.Thread(target=query, args=(n, base), daemon=True) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        began = time.perf_counter()
        answer = httpx.post(f"{base}/admin/reindex", headers=bearer(), timeout=300)
        swapped = time.perf_counter()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(60)
        health = httpx.get(f"{base}/health").json()

    assert answer.status_code == 200, answer.text
    result = answer.json()
    new = result["index_version"]
    assert (result["action"], result["previous_version"], result["changed"]) == ("reindex", old, True) and new != old
    assert (result["build"]["patterns"], result["build"]["patterns_rechunked"], result["build"]["chunks_encoded"]) == (25, 1, 1)
    assert health["index_version"] == new
    assert not failures and all(status == 200 for _, _, status, _, _ in records), failures[:3]
    assert {version for _, _, _, version, _ in records} == {old, new}
    during = [r for r in records if began <= r[0] < swapped]
    assert len(during) >= 4, "queries should keep being answered while the reindex runs"
    # each response comes from one version: the edited pattern's text matches the version that answered
    assert all(is_new == (version == new) for _, kind, _, version, is_new in records if kind == "pattern")
    assert all(version == new for sent, _, _, version, _ in records if sent > swapped)
    assert all(version == old for sent, _, _, version, _ in records if sent < began)
    print(f"\nlive reindex: {len(records)} requests ({len(during)} during the {swapped - began:.1f} s reindex), 0 failed; {old} -> {new}")


def test_reload_serves_a_build_made_elsewhere_and_admin_operations_run_one_at_a_time(library_copy, embedder, embedding_cache_dir):
    library, index_dir = library_copy
    app = create_app(Settings(index_dir=index_dir, admin_token=TOKEN), embedder=embedder)
    with TestClient(app) as client:
        old = client.get("/health").json()["index_version"]
        same = client.post("/admin/reload", headers=bearer()).json()
        assert (same["action"], same["previous_version"], same["index_version"], same["changed"]) == ("reload", old, old, False)

        edit_summary(library)
        new = build_index(BuildSettings(library, index_dir, cache_dir=embedding_cache_dir), embedder).build_id  # as `rag index` would
        assert client.get("/health").json()["index_version"] == old  # nothing changes until asked
        with app.state.admin_lock:  # another admin operation is running
            busy = client.post("/admin/reload", headers=bearer())
        assert (busy.status_code, busy.json()["detail"]) == (409, "another reindex or reload is running; retry when it has finished")
        done = client.post("/admin/reload", headers=bearer()).json()
        assert (done["previous_version"], done["index_version"], done["changed"]) == (old, new, True)
        assert client.get(f"/patterns/{EDITED}").json()["index_version"] == new
        assert "zebra-ledger" in client.get(f"/patterns/{EDITED}").json()["pattern"]["summary"]


def test_reindex_without_a_library_keeps_serving_and_says_what_to_set(state, patterns_index_dir, tmp_path):
    settings = Settings(index_dir=patterns_index_dir, library=tmp_path / "gone", admin_token=TOKEN)
    with TestClient(create_app(settings, state=state)) as client:
        smuggled = client.post("/admin/reindex", headers=bearer(), json={"library": "/etc", "index_dir": "/tmp"})
        assert smuggled.status_code == 422 and smuggled.json()["field"] in {"library", "index_dir"}  # no path from the caller
        refused = client.post("/admin/reindex", headers=bearer())
        assert refused.status_code == 409
        assert (
            refused.json()["detail"]
            == f"pattern library folder not found: {tmp_path / 'gone'}; set RAG_LIBRARY to the folder to index; still serving the "
            f"previous index"
        )
        assert client.get("/health").json()["index_version"] == state.version


# -- crash safety while serving -----------------------------------------------------------------
def test_a_killed_build_leaves_the_server_on_the_previous_version(tmp_path, embedder, embedding_cache_dir):
    library = small_library(tmp_path / "small")
    index_dir = tmp_path / "index"
    before = build_index(BuildSettings(library, index_dir, cache_dir=embedding_cache_dir), embedder).build_id
    big = tmp_path / "big"
    for i in range(60):  # fresh text and a fresh cache: encoding takes a while, so the kill lands mid-build
        topic = f"topic {i} with words {' '.join(str(i * j + 7) for j in range(40))}"
        write_pattern(big, f"p{i}", front_matter(f"p{i}", summary=f"Summary {i}."), topic_body(topic))
    settings = Settings(index_dir=index_dir, library=library, cache_dir=embedding_cache_dir, admin_token=TOKEN)
    with serve_in_thread(create_app(settings, embedder=embedder)) as base, httpx.Client(base_url=base, timeout=60) as http:
        proc = subprocess.Popen(
            [RAG, "index", str(big), "--index-dir", str(index_dir), "--cache-dir", str(tmp_path / "fresh-cache")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            cwd=REPO,
        )
        try:
            seen, deadline = b"", time.time() + 240
            while time.time() < deadline and b"encode" not in seen:
                data = os.read(proc.stderr.fileno(), 4096)  # tqdm redraws with \r: raw bytes, not lines
                if not data:
                    break
                seen += data
            assert b"encode" in seen, seen[-2000:]
            during = http.post("/search", json={"query": "honey and hives", "k": 1}).json()
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        after = http.post("/search", json={"query": "honey and hives", "k": 1}).json()
        reload = http.post("/admin/reload", headers=bearer()).json()
        reindex = http.post("/admin/reindex", headers=bearer(), timeout=120).json()  # the killed build's lock is gone
    assert (during["index_version"], during["hits"][0]["slug"]) == (before, "bees")
    assert (after["index_version"], after["hits"][0]["slug"]) == (before, "bees")
    assert (reload["index_version"], reload["changed"]) == (before, False)
    assert (reindex["index_version"], reindex["changed"], reindex["build"]["up_to_date"]) == (before, False, True)
    assert current_build(index_dir).name == before
    assert not [p.name for p in (index_dir / "builds").iterdir() if p.name != before]  # no partial build left behind
    assert {p.slug for p in SearchIndex.open(index_dir).patterns} == {"bees", "bikes", "bread"}


def test_rag_serve_refuses_a_missing_or_corrupt_index_with_a_message(tmp_path, embedder, embedding_cache_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    serve = [RAG, "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    missing = subprocess.run(
        [*serve, "--index-dir", str(tmp_path / "none")], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert missing.returncode == 2
    assert f"error: no index in {tmp_path / 'none'}: build one with `rag index LIBRARY --index-dir" in missing.stderr

    index_dir = tmp_path / "index"
    build_index(BuildSettings(small_library(tmp_path / "small"), index_dir, cache_dir=embedding_cache_dir), embedder)
    vectors = current_build(index_dir) / "vectors.npy"
    with open(vectors, "r+b") as handle:
        handle.truncate(vectors.stat().st_size - 100)
    corrupt = subprocess.run([*serve, "--index-dir", str(index_dir)], capture_output=True, text=True, env=env, cwd=REPO, timeout=240)
    assert corrupt.returncode == 2, corrupt.stderr[-2000:]
    assert "error: index file vectors.npy has" in corrupt.stderr and "(truncated?); run `rag index LIBRARY --index-dir" in corrupt.stderr
    assert "Traceback" not in corrupt.stderr and "serving index" not in corrupt.stderr


# -- security -----------------------------------------------------------------------------------
HOSTILE_PATHS = [
    "/patterns/..%2f..%2fetc%2fpasswd",
    "/patterns/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/patterns/..%5c..%5cetc%5cpasswd",
    "/patterns/%2fetc%2fpasswd/related",
    "/patterns/etc%00passwd/similar",
    "/patterns/~root",
    "/patterns/....//....//etc/passwd",
]


def test_no_user_input_reaches_a_filesystem_path(state, patterns_index_dir):
    """Hostile slugs are 4xx, and no file whose path contains them is opened (watched with an audit hook)."""
    opened: list[str] = []
    watching = threading.Event()

    def audit(event: str, args: tuple) -> None:
        if watching.is_set() and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # cannot be removed; inert once `watching` is cleared
    with TestClient(create_app(Settings(index_dir=patterns_index_dir), state=state)) as client:
        watching.set()
        try:
            open(os.devnull, "rb").close()  # the hook sees opens
            statuses = {path: client.get(path).status_code for path in HOSTILE_PATHS}
            searched = client.post("/search", json={"query": "../../etc/passwd", "filters": {"domain": "../../etc"}}).status_code
        finally:
            watching.clear()
    assert all(400 <= s < 500 for s in statuses.values()), statuses
    assert statuses["/patterns/..%5c..%5cetc%5cpasswd"] == 422 and searched == 422
    assert opened[0] == os.devnull
    assert not [p for p in opened if "passwd" in p or "etc" in Path(p).parts], opened
    for slug in ("../../etc/passwd", "/etc/passwd", "..", "a/b", "a\\b", "pull-based-replenishment\n", "x" * 201, ""):
        with pytest.raises(QueryError, match="not a path"):
            service.check_slug(state, slug)  # the same check guards the MCP tools and the CLI


def test_query_text_is_never_a_query_language(state, patterns_index_dir):
    hostile = ["title:* OR 1=1", "'; DROP TABLE patterns; --", '{"$ne": null}', ".*", "\\", "((((", "MATCH (n) DETACH DELETE n"]
    with TestClient(create_app(Settings(index_dir=patterns_index_dir), state=state)) as client:
        responses = [client.post("/search", json={"query": q, "k": 3}) for q in hostile]
    assert [r.status_code for r in responses] == [200] * len(hostile)
    assert all(r.json()["query"] == q for r, q in zip(responses, hostile))  # searched as text, echoed as given


def test_cors_is_off_by_default_and_on_for_configured_origins(state, patterns_index_dir):
    origin = {"Origin": "https://agents.example"}
    with TestClient(create_app(Settings(index_dir=patterns_index_dir), state=state)) as client:
        plain = client.get("/health", headers=origin)
        preflight = client.options("/search", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    assert "access-control-allow-origin" not in preflight.headers
    with TestClient(create_app(Settings(index_dir=patterns_index_dir, cors_origins=("https://agents.example",)), state=state)) as client:
        allowed = client.get("/health", headers=origin)
        other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://agents.example"
    assert "access-control-allow-origin" not in other.headers


def test_request_bodies_over_the_limit_are_413(state, patterns_index_dir):
    settings = Settings(index_dir=patterns_index_dir, admin_token=TOKEN)  # the default limit, 64 KiB
    big = b'{"query": "' + b"a" * settings.max_body_bytes + b'"}'
    with TestClient(create_app(settings, state=state)) as client:
        for path in ("/search", "/context", "/admin/reindex"):
            response = client.post(path, content=big, headers={"content-type": "application/json", **bearer()})
            assert (response.status_code, response.json()["field"]) == (413, "body"), path
        assert client.post("/search", json={"query": SHELVES}).status_code == 200


def test_admin_is_disabled_without_a_token(state, patterns_index_dir):
    with TestClient(create_app(Settings(index_dir=patterns_index_dir), state=state)) as client:
        for path in ("/admin/reindex", "/admin/reload"):
            response = client.post(path, headers=bearer())
            assert response.status_code == 404
            assert response.json()["detail"].startswith("admin operations are disabled: start the server with RAG_ADMIN_TOKEN set")
        assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/admin")]


def test_admin_token_is_required_and_compared_in_constant_time(state, patterns_index_dir, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with TestClient(create_app(Settings(index_dir=patterns_index_dir, admin_token=TOKEN), state=state)) as client:
        refused = {
            "missing": client.post("/admin/reload"),
            "wrong": client.post("/admin/reload", headers=bearer("s3cret-admin-tokeN")),
            "prefix": client.post("/admin/reload", headers=bearer(TOKEN[:-1])),
            "basic scheme": client.post("/admin/reload", headers={"Authorization": f"Basic {TOKEN}"}),
            "not ascii": client.post("/admin/reload", headers={"Authorization": b"Bearer \xff\xfe-token"}),
        }
        accepted = client.post("/admin/reload", headers=bearer())
        schema = client.get("/openapi.json").json()
    for name, response in refused.items():
        assert (response.status_code, response.headers.get("www-authenticate")) == (401, "Bearer"), name
        assert response.json()["detail"] == "missing or wrong admin token: send `Authorization: Bearer <RAG_ADMIN_TOKEN>`"
    assert accepted.status_code == 200 and accepted.json()["index_version"] == state.version
    assert (b"s3cret-admin-tokeN", TOKEN.encode()) in compared and (TOKEN.encode(), TOKEN.encode()) in compared
    assert len(compared) == 6  # every request with admin enabled, the refused ones included, went through compare_digest
    reload_op, reindex_op = schema["paths"]["/admin/reload"]["post"], schema["paths"]["/admin/reindex"]["post"]
    assert "parameters" not in reload_op and "requestBody" not in reload_op  # no user-supplied path or parameter
    assert "parameters" not in reindex_op  # reindex takes one boolean, allow_shrink, and nothing else
    ref = str(reindex_op["requestBody"]["content"]["application/json"]["schema"])
    body = next(schema["components"]["schemas"][name] for name in schema["components"]["schemas"] if f"/{name}'" in ref)
    assert body["properties"].keys() == {"allow_shrink"} and body["properties"]["allow_shrink"]["type"] == "boolean"
    for operation in (reload_op, reindex_op):
        assert operation["security"] == [{"HTTPBearer": []}]
