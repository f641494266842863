"""The pieces of `rag search --server` without a server: the wire JSON back to `Results`, and error bodies
to the local command's messages (the real HTTP runs in tests/integration/test_cli_server.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import typer

from rag.cli.remote import base_url, error_message
from rag.records.filters import Filters
from rag.records.results import Results
from rag.serve.wire import SearchResponse
from support import SHELVES

BASE = "http://127.0.0.1:8000"


@pytest.mark.parametrize("explain", [False, True])
def test_the_wire_json_maps_back_to_the_results_it_came_from(fake_retriever, explain):
    results = fake_retriever.search(SHELVES, 5, Filters(context="activist"), group_duplicates=True)
    wire = json.loads(json.dumps(SearchResponse.of(results, explain=explain).model_dump()))  # as it crosses HTTP
    back = Results.from_dict(wire)
    assert Results.from_dict(results.to_dict()) == results
    if not explain:  # the wire leaves out what only --explain prints
        results = replace(results, fusion={}, timings_ms={}, hits=tuple(replace(h, retrievers={}) for h in results.hits))
    assert back == results


def test_unknown_keys_of_a_newer_server_are_ignored(fake_retriever):
    wire = SearchResponse.of(fake_retriever.search(SHELVES, 2), explain=True).model_dump()
    wire["novelty"] = 1
    wire["hits"][0]["novelty"] = {"x": 1}
    wire["hits"][0]["evidence"][0]["novelty"] = 2
    assert Results.from_dict(wire).hits[0].slug == wire["hits"][0]["slug"]


def body(detail, field=None, **extra) -> bytes:
    return json.dumps({"detail": detail, "field": field, **extra}).encode()


@pytest.mark.parametrize(
    ("status", "retry", "raw", "message"),
    [
        (
            422,
            None,
            body("unknown domain 'x'; valid values: a, b", "filters.domain", valid=["a", "b"]),
            "domain: unknown domain 'x'; valid values: a, b",
        ),
        (
            422,
            None,
            body("filters.min_confidence must be at most 1, got 7", "filters.min_confidence"),
            "min_confidence: min_confidence must be at most 1, got 7",
        ),
        (
            422,
            None,
            body("query is empty; describe a situation or name a pattern", "query"),
            "query: query is empty; describe a situation or name a pattern",
        ),
        (413, None, body("request body too large"), "request body too large"),
        (
            503,
            "2",
            body("the index is still loading; retry in a few seconds", "index"),
            f"the server at {BASE} is still loading its index; retry in 2 s",
        ),
        (
            503,
            "5",
            body("Milvus at http://m:19530 is unreachable", "index"),
            f"the server at {BASE} cannot answer /search (HTTP 503): Milvus at http://m:19530 is unreachable",
        ),
        (
            500,
            None,
            body("internal error (a bug, logged on the server); the request may be retried"),
            f"the server at {BASE} cannot answer /search (HTTP 500): internal error (a bug, logged on the server); the request may be "
            f"retried",
        ),
        (404, None, body("Not Found"), f"the server at {BASE} answered /search with HTTP 404; is it a `rag serve`?"),
        (502, None, b"<html>bad gateway</html>", f"the server at {BASE} answered /search with HTTP 502; is it a `rag serve`?"),
    ],
)
def test_error_bodies_read_as_the_local_command_would_say(status, retry, raw, message):
    assert error_message(BASE, "/search", status, retry, raw) == message


def test_server_urls():
    assert base_url(" 127.0.0.1:8000/ ") == "http://127.0.0.1:8000"
    assert base_url("https://rag.example/api/") == "https://rag.example/api"
    with pytest.raises(typer.Exit):
        base_url("ftp://host")
