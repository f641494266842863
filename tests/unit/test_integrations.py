"""The agent frameworks' retrievers on the fake encoder, against the real langchain-core and llama-index-core: each
hit becomes the framework's document (slug as id, relevance, citation, the reader's label), and the filters, the
reader and k reach the search. The real model and the client's turn is tests/integration/test_python_api.py."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from pydantic import ValidationError

import rag
from rag.integrations import langchain, llamaindex
from rag.integrations.documents import hit_metadata, hit_text
from rag.records.results import Evidence, Hit, Results
from support import SHELVES

ASKED = {"k": 3, "filters": {"domain": "operations"}, "reader": "government"}


@pytest.fixture(scope="module")
def index(fake_index_dir, fake_encoder):
    return rag.open_index(fake_index_dir, encoder=fake_encoder)


@pytest.fixture(scope="module")
def expected(index):
    return index.search(SHELVES, **ASKED)


def test_a_hit_becomes_text_with_citations_and_flat_metadata():
    evidence = (
        Evidence("bees#summary", "Summary", "summary", "About bees.", 0.9, "dense"),
        Evidence("bees#solution", "Solution", "solution", "Keep two hives.", 0.8, "bm25"),
    )
    hit = Hit("bees", "Bees", "About bees.", ("farming",), 1, 2.5, {}, evidence, "activist", "Hive commons", relevance=0.7)
    results = Results("q", 1, {"domain": "farming", "context": None}, (hit,), "v1", {}, no_good_match=False)
    assert hit_text(hit) == "Bees\nAbout bees.\nactivist: Hive commons\n[bees#solution] Keep two hives."
    meta = hit_metadata(hit, results)
    assert meta["citation"] == "bees#summary" and meta["section"] == "Summary"
    assert meta["citations"] == ["bees#summary", "bees#solution"]
    assert meta["filters"] == {"domain": "farming"} and meta["relevance"] == 0.7 and meta["index_version"] == "v1"
    bare = hit_metadata(Hit("ants", "Ants", "", (), 2, 1.0, {}, ()), results)
    assert (bare["citation"], bare["section"], bare["citations"]) == ("ants", None, [])


def test_the_langchain_retriever_maps_each_hit_to_a_document(index, expected):
    retriever = langchain.PatternRetriever(library=index, **ASKED)
    docs = retriever.invoke(SHELVES)
    assert [d.id for d in docs] == expected.slugs and docs[0].id == "pull-based-replenishment"
    for doc, hit in zip(docs, expected.hits, strict=True):
        assert doc.metadata == hit_metadata(hit, expected) and doc.page_content == hit_text(hit)
        assert doc.metadata["relevance"] == hit.relevance and doc.metadata["title"] == hit.title
        assert doc.metadata["citation"] == hit.evidence[0].chunk_id and doc.metadata["citation"].startswith(f"{hit.slug}#")
        assert doc.metadata["context"] == "government" and doc.metadata["filters"] == {"domain": "operations"}
        assert "operations" in doc.metadata["domains"]
    assert asyncio.run(retriever.ainvoke(SHELVES)) == docs


def test_langchain_invoke_arguments_are_this_call_s_own(index):
    retriever = langchain.PatternRetriever(library=index, **ASKED)
    docs = retriever.invoke(SHELVES, k=1, filters={"domain": "finance"}, reader="activist")
    assert [d.id for d in docs] == index.search(SHELVES, 1, filters={"domain": "finance"}, reader="activist").slugs
    assert docs[0].metadata["filters"] == {"domain": "finance"} and docs[0].metadata["context"] == "activist"
    assert asyncio.run(retriever.ainvoke(SHELVES, k=1, filters={"domain": "finance"}, reader="activist")) == docs
    assert len(retriever.invoke(SHELVES)) == 3  # the retriever's own settings again


def test_langchain_refuses_what_the_index_refuses(index):
    with pytest.raises(ValidationError, match="unknown filter 'domian'"):
        langchain.PatternRetriever(library=index, filters={"domian": "x"})
    with pytest.raises(ValidationError):
        langchain.PatternRetriever(library="http://127.0.0.1:8000")  # a URL is not a library: rag.Client(url) is
    with pytest.raises(rag.UnknownFilterValue, match="unknown domain 'shipping'"):
        langchain.PatternRetriever(library=index, filters={"domain": "shipping"}).invoke(SHELVES)


def test_the_llamaindex_retriever_scores_nodes_by_relevance(index, expected):
    retriever = llamaindex.PatternRetriever(index, **ASKED)
    nodes = retriever.retrieve(SHELVES)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.node_id for n in nodes] == expected.slugs
    assert [n.score for n in nodes] == [h.relevance for h in expected.hits]
    for node, hit in zip(nodes, expected.hits, strict=True):
        assert node.node.metadata == hit_metadata(hit, expected) and node.node.text == hit_text(hit)
    shown = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert f"citation: {expected.hits[0].evidence[0].chunk_id}" in shown and "index_version" not in shown
    assert nodes[0].node.get_content(metadata_mode=MetadataMode.EMBED) == hit_text(expected.hits[0])
    again = asyncio.run(retriever.aretrieve(SHELVES))
    assert [(n.node.node_id, n.score, n.node.metadata) for n in again] == [(n.node.node_id, n.score, n.node.metadata) for n in nodes]
