"""Context packs: within the token budget, citable, the best pattern's sections first."""

from __future__ import annotations

import pytest

from rag.search.context import build_context
from rag.search.filters import Filters
from rag.errors import QueryError

QUERY = "our shelves are full of stock nobody ordered"


@pytest.mark.parametrize("budget", [60, 333, 1200, 4000])
def test_pack_never_exceeds_the_budget(retriever, token_counter, budget):
    pack = build_context(retriever, QUERY, budget_tokens=budget)
    assert pack.tokens == token_counter([pack.markdown])[0] <= budget
    assert pack.budget_tokens == budget


def test_passages_are_citable_chunks_and_best_pattern_first(retriever, search_index):
    pack = build_context(retriever, QUERY, budget_tokens=1500)
    chunks = {c.id: c for c in search_index.chunks}
    assert pack.patterns[0].slug == "pull-based-replenishment"
    assert pack.passages[0].slug == "pull-based-replenishment"
    for p in pack.passages:
        assert p.cite in chunks and chunks[p.cite].slug == p.slug
        assert f"### {p.section} [{p.cite}]\n\n{p.text}" in pack.markdown
    top = {p.cite for p in pack.passages if p.slug == "pull-based-replenishment"}
    assert {"pull-based-replenishment#problem", "pull-based-replenishment#solution"} <= top
    assert pack.index_version == search_index.version
    assert pack.markdown.startswith(f"# Context for: {QUERY}\n")


def test_a_larger_budget_adds_passages_and_keeps_the_smaller_packs_top_pattern(retriever):
    small = build_context(retriever, QUERY, budget_tokens=400)
    large = build_context(retriever, QUERY, budget_tokens=3000)
    assert len(large.passages) > len(small.passages) >= 1
    assert small.passages[0].cite.startswith("pull-based-replenishment#")
    assert small.skipped > large.skipped


def test_filters_and_context_label(retriever):
    pack = build_context(retriever, QUERY, budget_tokens=6000, filters=Filters(context="activist"), patterns=2)
    assert len(pack.patterns) == 2
    assert "pull-based-replenishment#context-activist" in [p.cite for p in pack.passages]
    assert not any(p.role == "context-label" and not p.cite.endswith("#context-activist") for p in pack.passages)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"budget_tokens": 10}, "budget_tokens"), ({"budget_tokens": 10**6}, "budget_tokens"), ({"patterns": 0}, "patterns"), ({"patterns": 21}, "patterns")],
)
def test_out_of_range_arguments_name_the_field(retriever, kwargs, field):
    with pytest.raises(QueryError) as info:
        build_context(retriever, QUERY, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)
