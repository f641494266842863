"""The Python API end to end on patterns/ with the real model: `rag.open_index` as a user calls it (the query
encoder its index names) and a `rag.Client` of a real `rag serve` app under uvicorn (its own encoder, as served)
answer equal records and raise the same typed errors; the LangChain and LlamaIndex retrievers, over either, give
the same documents; a client and an index's reads never import torch."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

import rag
from bench.loadgen import serve_in_thread
from rag.config import Settings
from rag.integrations import langchain, llamaindex
from rag.serve.http import create_app
from support import REPO, SHELVES
from support.api_cases import CALLS, ERRORS, as_json, assert_same_error, call, ids


@pytest.fixture(scope="module")
def index(patterns_index_dir):
    return rag.open_index(patterns_index_dir)


@pytest.fixture(scope="module")
def client(patterns_index_dir):
    with serve_in_thread(create_app(Settings(index_dir=patterns_index_dir))) as url:
        yield rag.Client(url)


@pytest.mark.parametrize("case", CALLS, ids=ids)
def test_in_process_and_over_http_the_answers_are_equal(index, client, case):
    assert call(client, *case) == call(index, *case)


def test_the_answers_are_the_expected_ones(index):
    results = index.search(SHELVES, 5)
    assert results.slugs[0] == "pull-based-replenishment" and not results.no_good_match
    assert results.hits[0].relevance > 0.5 and results.hits[0].evidence[0].chunk_id.startswith("pull-based-replenishment#")
    assert index.search("Open Book Management", 3).hits[0].pinned
    assert index.search("zzzz qqqq", 1).no_good_match
    pack = index.context_pack(SHELVES, 400)
    assert pack.passages[0].cite.startswith("pull-based-replenishment#") and pack.tokens <= 400


def test_an_explained_search_is_equal_but_for_timings(index, client):
    local, remote = index.search(SHELVES, 5, explain=True), client.search(SHELVES, 5, explain=True)
    assert remote.hits == local.hits and remote.hits[0].retrievers
    assert remote.fusion == as_json(local.fusion) and remote.fusion


@pytest.mark.parametrize("case", ERRORS, ids=ids)
def test_in_process_and_over_http_the_errors_are_the_same(index, client, case):
    assert_same_error(index, client, case)


@pytest.mark.parametrize("over", ["index", "client"])
def test_the_langchain_retriever_end_to_end(request, index, over):
    library = request.getfixturevalue(over)
    retriever = langchain.PatternRetriever(library=library, k=3, filters={"domain": "operations"}, reader="government")
    docs = retriever.invoke(SHELVES)
    expected = index.search(SHELVES, 3, filters={"domain": "operations"}, reader="government")
    assert [d.id for d in docs] == expected.slugs and docs[0].id == "pull-based-replenishment"
    first = docs[0].metadata
    assert (first["slug"], first["title"]) == ("pull-based-replenishment", "Pull-Based Replenishment")
    assert first["relevance"] == expected.hits[0].relevance and first["citation"] == expected.hits[0].evidence[0].chunk_id
    assert first["context"] == "government" and first["context_label"] == index.pattern("pull-based-replenishment").pattern.context_label(
        "government"
    )
    assert all(d.metadata["filters"] == {"domain": "operations"} and "operations" in d.metadata["domains"] for d in docs)
    cited = [f"[{e.chunk_id}]" for e in expected.hits[0].evidence if e.role != "summary"]
    assert cited and all(c in docs[0].page_content for c in cited) and docs[0].page_content.startswith("Pull-Based Replenishment\n")
    one = retriever.invoke("who decides what", k=1, filters={"domain": "governance"})
    assert len(one) == 1 and "governance" in one[0].metadata["domains"]
    assert asyncio.run(retriever.ainvoke(SHELVES)) == docs


@pytest.mark.parametrize("over", ["index", "client"])
def test_the_llamaindex_retriever_end_to_end(request, index, over):
    library = request.getfixturevalue(over)
    nodes = llamaindex.PatternRetriever(library, 3, filters={"status": "stable"}, reader="activist").retrieve(SHELVES)
    expected = index.search(SHELVES, 3, filters={"status": "stable"}, reader="activist")
    assert [n.node.node_id for n in nodes] == expected.slugs and nodes[0].node.node_id == "pull-based-replenishment"
    assert [n.score for n in nodes] == [h.relevance for h in expected.hits]
    meta = nodes[0].node.metadata
    assert meta["citation"] == expected.hits[0].evidence[0].chunk_id and meta["title"] == "Pull-Based Replenishment"
    assert meta["context"] == "activist" and meta["filters"] == {"status": "stable"}


def test_the_retrievers_give_the_same_documents_over_either(index, client):
    assert langchain.PatternRetriever(library=client, k=5).invoke(SHELVES) == langchain.PatternRetriever(library=index, k=5).invoke(SHELVES)


NO_TORCH = """
import sys, rag
client = rag.Client(sys.argv[2])
assert client.search("stock nobody ordered", 2).hits and client.pattern("time-banking").pattern.sections
index = rag.open_index(sys.argv[1])
assert index.pattern("time-banking").pattern.sections and index.related("time-banking").related and index.facets().domains
assert index.search("stock nobody ordered", 2).slugs[0] == "pull-based-replenishment"
print([m for m in ("torch", "fastapi") if m in sys.modules])
"""


def test_a_client_and_an_index_on_the_cpu_never_import_torch(patterns_index_dir, client):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_DEVICE": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(patterns_index_dir), client.url],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
