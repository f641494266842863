"""Browsing (GET /patterns) and paging (`offset` on POST /search), on patterns/ indexed with the fake encoder."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from rag.errors import QueryError
from rag.records.request import SearchRequest
from rag.serve import service
from rag.serve.http import create_app
from rag.serve.state import State
from support import PATTERNS, SHELVES


@pytest.fixture(scope="module")
def state(fake_index_dir, fake_encoder):
    return State.load(fake_index_dir, fake_encoder)


@pytest.fixture(scope="module")
def client(state, fake_index_dir):
    with TestClient(create_app(Settings(index_dir=fake_index_dir), state=state)) as c:
        yield c


def test_list_pages_through_every_pattern_in_title_order(client, state):
    total = len(list(PATTERNS.glob("*.md")))
    first = client.get("/patterns", params={"limit": 10}).json()
    assert (first["total"], first["offset"], first["limit"], first["next_offset"]) == (total, 0, 10, 10)
    slugs = [p["slug"] for p in first["patterns"]]
    offset = first["next_offset"]
    while offset is not None:
        page = client.get("/patterns", params={"limit": 10, "offset": offset}).json()
        slugs += [p["slug"] for p in page["patterns"]]
        offset = page["next_offset"]
    by_title = sorted(state.index.patterns, key=lambda p: (p.title.casefold(), p.slug))
    assert slugs == [p.slug for p in by_title]
    assert first["index_version"] == state.version


def test_list_filters_count_the_matching_patterns(client, state):
    expected = sorted(p.slug for p in state.index.patterns if "finance" in {d.lower() for d in p.domains})
    body = client.get("/patterns", params={"domain": "finance", "context": "corporate", "limit": 200}).json()
    assert body["total"] == len(expected) > 0
    assert sorted(p["slug"] for p in body["patterns"]) == expected
    assert body["filters"] == {"domain": "finance", "context": "corporate", "status": None, "min_confidence": None}
    assert all(p["context_label"] for p in body["patterns"])
    assert body["next_offset"] is None


def test_list_past_the_end_is_an_empty_page_and_bad_values_name_the_field(client):
    body = client.get("/patterns", params={"offset": 500}).json()
    assert (body["patterns"], body["next_offset"]) == ([], None)
    assert client.get("/patterns", params={"limit": 0}).status_code == 422
    bad = client.get("/patterns", params={"domain": "astrology"})
    assert bad.status_code == 422 and bad.json()["field"] == "domain"


def test_search_offset_returns_the_next_hits_with_absolute_ranks(client):
    five = client.post("/search", json={"query": SHELVES, "k": 5}).json()["hits"]
    page = client.post("/search", json={"query": SHELVES, "k": 3, "offset": 2}).json()
    assert [h["slug"] for h in page["hits"]] == [h["slug"] for h in five[2:5]]
    assert [h["rank"] for h in page["hits"]] == [3, 4, 5]
    assert (page["k"], page["offset"]) == (3, 2)
    assert client.post("/search", json={"query": SHELVES, "offset": -1}).status_code == 422


def test_offset_plus_k_is_capped_by_max_k(state):
    with pytest.raises(QueryError, match=r"k must be between 1 and 10 with offset 90 \(offset \+ k is at most 100\), got 20") as exc:
        service.search(state, SearchRequest(SHELVES, 20, 90))
    assert exc.value.field == "k"
    with pytest.raises(QueryError, match="offset must be a whole number from 0 to 99, got 100"):
        service.search(state, SearchRequest(SHELVES, 1, 100))
    assert len(service.search(state, SearchRequest(SHELVES, 10, 90)).hits) == min(10, max(0, len(state.index.patterns) - 90))
