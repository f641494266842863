"""The HTTP API through TestClient(create_app(settings)): answers, index versions, errors and limits."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from rag.config import RetrieverSettings, Settings
from rag.serve.http import create_app
from rag.serve.http.app import swap_state
from rag.serve.state import State
from support import SHELVES


@pytest.fixture(scope="module")
def settings(patterns_index_dir) -> Settings:
    return Settings(index_dir=patterns_index_dir, max_body_bytes=4096)


@pytest.fixture(scope="module")
def client(settings, embedder):
    with TestClient(create_app(settings, embedder=embedder)) as client:
        yield client


def test_search_finds_the_pattern_for_a_situation(client, search_index):
    response = client.post("/search", json={"query": SHELVES, "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert "pull-based-replenishment" in [h["slug"] for h in body["hits"]][:3]
    assert body["index_version"] == search_index.version
    assert len(body["hits"]) == 3
    assert body["hits"][0]["evidence"][0]["chunk_id"].startswith(body["hits"][0]["slug"] + "#")
    assert body["hits"][0]["retrievers"] is None and body["fusion"] is None


def test_a_pattern_name_comes_first_and_explain_shows_each_retriever(client):
    body = client.post("/search", json={"query": "Open Book Management", "k": 5, "explain": True}).json()
    top = body["hits"][0]
    assert top["slug"] == "open-book-management"
    assert top["name_match"] == "Open Book Management"
    assert set(top["retrievers"]) == {"dense", "keywords", "fulltext", "names"}
    assert body["fusion"]["method"] == RetrieverSettings().fusion
    assert "total" in body["timings_ms"]


def test_filters_restrict_hits_and_context_adds_its_label(client):
    body = client.post("/search", json={"query": SHELVES, "k": 5, "filters": {"domain": "Finance", "context": "activist"}}).json()
    assert body["filters"]["domain"] == "finance"
    assert body["hits"] and all("finance" in [d.lower() for d in h["domains"]] for h in body["hits"])
    labelled = {h["slug"]: h["context_label"] for h in body["hits"]}
    assert labelled["pull-based-replenishment"].startswith("Running a food bank")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"query": "   "}, "query", "query is empty"),
        ({"query": "x" * 2001}, "query", "the limit is 2000"),
        ({"query": ""}, "query", "query is empty"),
        ({"query": "stock", "k": 0}, "k", "k must be at least 1, got 0"),
        ({"query": "stock", "k": 101}, "k", "k must be at most 100, got 101"),
        ({"query": "stock", "k": "10"}, "k", "k: Input should be a valid integer"),
        ({"query": "stock", "explain": 0}, "explain", "explain: Input should be a valid boolean"),
        (
            {"query": "stock", "filters": {"domain": "astrology"}},
            "filters.domain",
            "unknown domain 'astrology'; valid values: community, finance",
        ),
        ({"query": "stock", "filters": {"status": "dead"}}, "filters.status", "unknown status 'dead'; valid values: stable"),
        ({"query": "stock", "filters": {"min_confidence": 7}}, "filters.min_confidence", "filters.min_confidence must be at most 1, got 7"),
        ({"query": "stock", "filters": {"colour": "red"}}, "filters.colour", "Extra inputs are not permitted"),
        ({"k": 3}, "query", "query is required"),
    ],
)
def test_bad_search_input_is_a_422_naming_the_field(client, body, field, message):
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert message in response.json()["detail"]


def test_unknown_filter_value_lists_the_valid_ones(client):
    body = client.post("/search", json={"query": "stock", "filters": {"context": "martian"}}).json()
    assert body["valid"] == ["academic", "activist", "corporate", "government", "tech"]


def test_malformed_bodies_are_4xx(client):
    bad_json = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert (bad_json.status_code, bad_json.json()["field"]) == (422, "body")
    surrogate = client.post("/search", content=b'{"query": "\\ud800 stock"}', headers={"content-type": "application/json"})
    assert (surrogate.status_code, surrogate.json()["field"]) == (422, "query")
    assert "unicode" in surrogate.json()["detail"]
    not_utf8 = client.post("/search", content=b'{"query": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert (not_utf8.status_code, not_utf8.json()["field"]) in ((400, "body"), (422, "body"))
    too_big = client.post("/search", content=b'{"query": "' + b"a" * 5000 + b'"}', headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "larger than 4096 bytes" in too_big.json()["detail"]

    def chunked():
        yield b'{"query": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    streamed = client.post("/search", content=chunked(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_get_pattern_whole_and_seen_from_a_context(client, search_index):
    body = client.get("/patterns/pull-based-replenishment", params={"context": "government"}).json()
    pattern = body["pattern"]
    assert pattern["slug"] == "pull-based-replenishment" and pattern["schema"] == "ontology"
    assert [s["title"] for s in pattern["sections"]][:3] == ["Context", "Problem", "Solution"]
    assert body["context"] == "government" and body["context_label"].startswith("Restocking depots")
    assert body["index_version"] == search_index.version
    assert client.get("/patterns/pull-based-replenishment").json()["context"] is None


@pytest.mark.parametrize(
    ("path", "status", "field", "message"),
    [
        ("/patterns/no-such-pattern", 404, "slug", "no pattern with slug 'no-such-pattern'"),
        ("/patterns/pull-based-replenishmnt/related", 404, "slug", "did you mean pull-based-replenishment?"),
        ("/patterns/..%5C..%5Cetc%5Cpasswd", 422, "slug", "invalid slug"),
        ("/patterns/%2e%2e", 422, "slug", "(not a path)"),
        ("/patterns/Pull-Based/similar", 422, "slug", "lowercase"),
        ("/patterns/pull-based-replenishment?context=lunar", 422, "context", "unknown context 'lunar'"),
        ("/patterns/pull-based-replenishment/similar?k=0", 422, "k", "k must be at least 1, got 0"),
        ("/patterns/pull-based-replenishment/similar?min_confidence=nan", 422, "min_confidence", "min_confidence"),
        ("/patterns/pull-based-replenishment/similar?k=many", 422, "k", "valid integer"),
    ],
)
def test_bad_slugs_and_parameters(client, path, status, field, message):
    response = client.get(path)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert message in response.json()["detail"]


def test_an_encoded_path_never_reaches_a_handler(client):
    assert client.get("/patterns/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/patterns/pull-based-replenishment%2F..%2F..").status_code == 404


def test_related_lists_curated_edges_both_ways(client, search_index):
    body = client.get("/patterns/pull-based-replenishment/related").json()
    edges = {(r["slug"], r["kind"], r["direction"]) for r in body["related"]}
    assert ("work-in-progress-limits", "complementary", "both") in edges
    assert ("small-batch-delivery", "enables", "outgoing") in edges
    assert ("standard-work-checklist", "requires", "outgoing") in edges
    curated = {(r.target, r.kind) for r in search_index.pattern("pull-based-replenishment").relationships}
    assert {(r["slug"], r["kind"]) for r in body["related"] if r["direction"] != "incoming"} == curated
    weights = [r["weight"] or 0 for r in body["related"]]
    assert weights == sorted(weights, reverse=True)


def test_similar_excludes_itself_and_honours_filters(client, search_index):
    body = client.get("/patterns/pull-based-replenishment/similar", params={"k": 4}).json()
    slugs = [s["slug"] for s in body["similar"]]
    assert len(slugs) == 4 and "pull-based-replenishment" not in slugs
    scores = [s["score"] for s in body["similar"]]
    assert scores == sorted(scores, reverse=True)
    governance = client.get("/patterns/pull-based-replenishment/similar", params={"k": 50, "domain": "governance"}).json()["similar"]
    assert governance and all("governance" in search_index.pattern(s["slug"]).domains for s in governance)


def test_facets_health_stats(client, search_index):
    facets = client.get("/facets").json()
    assert {"value": "stable", "count": 25} in facets["statuses"]
    assert sum(f["count"] for f in facets["contexts"]) == sum(len(p.contexts) for p in search_index.patterns)
    health = client.get("/health").json()
    assert {k: health[k] for k in ("status", "index_version", "patterns", "engine", "reachable")} == {
        "status": "ok",
        "index_version": search_index.version,
        "patterns": 25,
        "engine": "embedded",
        "reachable": True,
    }
    stats = client.get("/stats").json()
    assert stats["model"] == {"name": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384, "max_seq_length": 256}
    assert stats["counts"]["patterns"] == 25 and stats["counts"]["chunks"] == len(search_index.chunks)
    assert stats["index_version"] == search_index.version


def test_context_pack_within_budget_with_citations(client, token_counter):
    from rag.search.context import passage_json

    body = client.post("/context", json={"query": SHELVES, "budget_tokens": 700}).json()
    sent = [passage_json(p["cite"], p["text"]) for p in body["passages"]]
    assert body["tokens"] == sum(token_counter(sent)) + len(sent) <= 700  # each passage as {cite, text} JSON and its comma
    assert body["passages"][0]["cite"].startswith("pull-based-replenishment#")
    assert {"pull-based-replenishment#solution", "pull-based-replenishment#problem"} <= {p["cite"] for p in body["passages"]}
    assert "markdown" not in body  # the text is sent once, in the passages
    bad = client.post("/context", json={"query": SHELVES, "budget_tokens": 5})
    assert (bad.status_code, bad.json()["field"], bad.json()["detail"]) == (
        422,
        "budget_tokens",
        "budget_tokens must be at least 50, got 5",
    )


def test_every_route_has_a_short_operation_id_and_a_response_model(client):
    schema = client.get("/openapi.json").json()
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()}
    assert {op["operationId"] for op in operations.values()} == {
        "search",
        "get_pattern",
        "related",
        "similar",
        "facets",
        "health",
        "health_live",
        "health_ready",
        "stats",
        "context_pack",
        "list_patterns",
    }
    for op in operations.values():
        assert "$ref" in op["responses"]["200"]["content"]["application/json"]["schema"]


def test_cors_is_off_by_default_and_on_when_configured(client, settings, embedder):
    preflight = {"Origin": "https://agents.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/search", headers=preflight).headers
    with TestClient(create_app(settings.with_(cors_origins=("https://agents.example",)), state=client.app.state.rag)) as cors:
        allowed = cors.options("/search", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://agents.example"
        assert "access-control-allow-origin" not in cors.options("/search", headers={**preflight, "Origin": "https://evil.example"}).headers


def test_swapping_the_state_serves_the_new_version_from_the_next_request(settings, client):
    state: State = client.app.state.rag
    index = dataclasses.replace(state.index, manifest=state.index.manifest.with_(build_id="v2-test"))
    newer = dataclasses.replace(state, index=index, retriever=type(state.retriever)(index, state.retriever.embedder))
    app = create_app(settings, state=state)
    with TestClient(app) as c:
        before = c.post("/search", json={"query": SHELVES, "k": 1}).json()["index_version"]
        assert swap_state(app, newer) is state
        after = c.post("/search", json={"query": SHELVES, "k": 1}).json()
        assert (before, after["index_version"], c.get("/health").json()["index_version"]) == (state.version, "v2-test", "v2-test")


def test_a_bug_is_a_logged_500_with_a_json_body(settings, client, caplog):
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("boom")

    state = dataclasses.replace(client.app.state.rag, retriever=Broken())
    with TestClient(create_app(settings, state=state), raise_server_exceptions=False) as c:
        response = c.post("/search", json={"query": SHELVES})
    assert response.status_code == 500
    assert response.json()["detail"].startswith("internal error")
    assert "boom" not in response.text
    assert any("unhandled error on POST /search" in r.getMessage() for r in caplog.records)
