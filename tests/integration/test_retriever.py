"""The hybrid retriever on the project's own library (real model, real FAISS, real BM25)."""

from __future__ import annotations

import pytest

from rag.errors import QueryError, UnknownFilterValue
from rag.search.filters import Filters
from rag.search.retriever import Retriever
from support import front_matter, write_pattern


def test_situation_in_own_words_finds_the_pattern(retriever):
    results = retriever.search("our shelves are full of stock nobody ordered", k=5)
    assert results.slugs[0] == "pull-based-replenishment"
    hit = results.hits[0]
    assert hit.evidence and all(e.chunk_id.startswith("pull-based-replenishment#") for e in hit.evidence)
    assert {"dense", "fulltext"} <= set(hit.retrievers)
    assert results.index_version == retriever.index.version


@pytest.mark.parametrize(
    "query, slug",
    [
        ("Open Book Management", "open-book-management"),
        ("open book managment", "open-book-management"),
        ("Glass-Walls Accounting", "open-book-management"),
        ("WIP caps", "work-in-progress-limits"),
        ("library of things", "shared-tool-library"),
        ("Sociocratic Consent", "consent-decision-making"),
    ],
)
def test_a_known_name_puts_its_pattern_first(retriever, query, slug):
    results = retriever.search(query, k=3)
    assert results.slugs[0] == slug
    assert results.hits[0].name_match is not None


def test_filters_apply_before_the_cut(retriever):
    finance = [p.slug for p in retriever.index.patterns if "finance" in p.domains]
    assert len(finance) > 5
    results = retriever.search("how do we decide things together", k=len(finance), filters=Filters(domain="finance"))
    assert sorted(results.slugs) == sorted(finance)  # every matching pattern comes back, none other
    assert retriever.search("anything", k=100, filters=Filters(domain="Finance")).filters["domain"] == "finance"


def test_context_filter_returns_the_label_in_that_context(retriever):
    results = retriever.search("tenants union organising without big donors", k=3, filters=Filters(context="activist"))
    hit = results.hits[0]
    assert hit.context == "activist"
    assert hit.context_label == retriever.index.pattern(hit.slug).context_label("activist")


def test_unknown_filter_values_are_rejected_with_the_valid_ones(retriever):
    with pytest.raises(UnknownFilterValue) as info:
        retriever.search("x", filters=Filters(domain="astrology"))
    assert info.value.field == "domain" and "finance" in info.value.valid and "unknown domain 'astrology'" in str(info.value)
    with pytest.raises(UnknownFilterValue, match="unknown context 'pirate'"):
        retriever.search("x", filters=Filters(context="pirate"))


@pytest.mark.parametrize(
    "query, k, field", [("", 10, "query"), ("   ", 10, "query"), ("x" * 5000, 10, "query"), ("ok", 0, "k"), ("ok", 101, "k")]
)
def test_bad_queries_name_the_field(retriever, query, k, field):
    with pytest.raises(QueryError) as info:
        retriever.search(query, k=k)
    assert info.value.field == field


def test_fusion_settings_change_the_ranking(retriever):
    query = "we keep starting new work and finishing nothing"
    dense_only = Retriever(retriever.index, retriever.embedder, retriever.settings.with_(weights={"dense": 1.0}))
    lexical_only = Retriever(retriever.index, retriever.embedder, retriever.settings.with_(weights={"keywords": 1.0}))
    a, b = dense_only.search(query, k=10), lexical_only.search(query, k=10)
    assert set(a.hits[0].retrievers) == {"dense"} and set(b.hits[0].retrievers) == {"keywords"}
    assert a.slugs != b.slugs
    rrf = Retriever(retriever.index, retriever.embedder, retriever.settings.with_(fusion="rrf", rrf_k=60.0))
    assert rrf.search(query, k=3).fusion["method"] == "rrf"


def test_near_duplicates_group_under_the_best(tmp_path, embedder, embedding_cache_dir):
    from rag.config import BuildSettings
    from rag.index.build import build_index
    from rag.index.search_index import SearchIndex

    body = "\n".join(
        f"### Section {n}: {name}\n\nKanban boards limit work in progress with cards and columns.\n"
        for n, name in enumerate(
            ["Context", "Problem", "Solution", "Implementation", "Consequences", "Known Uses", "Cognitive Era", "Vitality"], 1
        )
    )
    for slug, title in (
        ("kanban", "Kanban"),
        ("kanban-production", "Kanban (Production)"),
        ("kanban-original-toyota-system", "Kanban: the original Toyota system"),
        ("tea-ceremony", "Tea Ceremony"),
    ):
        write_pattern(
            tmp_path / "lib",
            slug,
            front_matter(slug, title),
            body
            if slug != "tea-ceremony"
            else body.replace("Kanban boards limit work in progress with cards and columns", "Whisk matcha slowly in a quiet room"),
        )
    build_index(BuildSettings(tmp_path / "lib", tmp_path / "ix", cache_dir=embedding_cache_dir), embedder)
    r = Retriever(SearchIndex.open(tmp_path / "ix"), embedder)
    flat = r.search("kanban", k=4)
    assert flat.slugs[0] == "kanban" and len(flat.hits) == 4
    grouped = r.search("kanban", k=4, group_duplicates=True)
    assert grouped.slugs == ["kanban", "tea-ceremony"]
    assert set(grouped.hits[0].duplicates) == {"kanban-production", "kanban-original-toyota-system"}
