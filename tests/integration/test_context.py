"""Context packs: within the token budget as sent, citable, filled by value (Solution and Problem first)."""

from __future__ import annotations

import pytest

from rag.errors import QueryError
from rag.search.context import build_context, passage_json
from rag.search.filters import Filters

QUERY = "our shelves are full of stock nobody ordered"


def sent_tokens(pack, token_counter) -> int:
    """The passages as a face sends them: their {cite, text} JSON objects, comma-separated."""
    return sum(token_counter([passage_json(p.cite, p.text) for p in pack.passages])) + len(pack.passages)


@pytest.mark.parametrize("budget", [60, 333, 600, 700, 800, 1200, 2000, 4000])
def test_pack_never_exceeds_the_budget_as_sent(retriever, token_counter, budget):
    pack = build_context(retriever, QUERY, budget_tokens=budget)
    assert pack.tokens == sent_tokens(pack, token_counter) == sum(p.tokens for p in pack.passages) <= budget
    assert pack.budget_tokens == budget


@pytest.mark.parametrize("budget", [600, 700, 800, 2000])
def test_the_solution_comes_first_even_in_small_packs(retriever, search_index, budget):
    pack = build_context(retriever, QUERY, budget_tokens=budget)
    top = pack.patterns[0].slug
    assert top == "pull-based-replenishment"
    cites = [p.cite for p in pack.passages]
    assert f"{top}#solution" in cites and f"{top}#problem" in cites
    reasons = {p.cite: p.reason for p in pack.passages}
    assert reasons[f"{top}#solution"] == reasons[f"{top}#problem"] == "core"
    # every pattern that got anything got its Solution when it has one that would have fitted
    roles = {(c.slug, c.role) for c in search_index.chunks}
    for packed in pack.patterns:
        if (packed.slug, "solution") in roles and budget >= 2000:
            assert any(p.slug == packed.slug and p.role == "solution" for p in pack.passages)


def test_tiers_core_then_practice_then_the_rest(retriever):
    whole = build_context(retriever, QUERY, budget_tokens=6000, patterns=1)
    role_reason = {p.role: p.reason for p in whole.passages}
    assert role_reason["solution"] == role_reason["problem"] == "core"
    assert role_reason["implementation"] == role_reason["consequences"] == "practice"
    assert {r for role, r in role_reason.items() if role not in ("solution", "problem", "implementation", "consequences")} <= {
        "evidence",
        "more",
    }
    # a budget of exactly the first two tiers holds exactly them
    tiers = [p for p in whole.passages if p.reason in ("core", "practice")]
    exact = build_context(retriever, QUERY, budget_tokens=sum(p.tokens for p in tiers), patterns=1)
    assert [p.cite for p in exact.passages] == [p.cite for p in tiers]
    core = [p for p in whole.passages if p.reason == "core"]
    assert [p.cite for p in build_context(retriever, QUERY, budget_tokens=sum(p.tokens for p in core), patterns=1).passages] == [
        p.cite for p in core
    ]


def test_passages_are_citable_chunks_and_the_markdown_renders_them_once(retriever, search_index):
    pack = build_context(retriever, QUERY, budget_tokens=1500)
    chunks = {c.id: c for c in search_index.chunks}
    assert pack.passages[0].slug == "pull-based-replenishment"
    for p in pack.passages:
        assert p.cite in chunks and chunks[p.cite].slug == p.slug
        assert pack.markdown.count(f"### {p.section} [{p.cite}]\n\n{p.text}") == 1
    assert pack.index_version == search_index.version
    assert pack.markdown.startswith(f"# Context for: {QUERY}\n")
    assert "markdown" not in pack.to_dict()


def test_a_larger_budget_adds_passages_and_keeps_the_smaller_packs_top_pattern(retriever):
    small = build_context(retriever, QUERY, budget_tokens=400)
    large = build_context(retriever, QUERY, budget_tokens=3000)
    assert len(large.passages) > len(small.passages) >= 1
    assert small.passages[0].cite.startswith("pull-based-replenishment#")
    assert small.skipped > large.skipped


def test_filters_and_context_label(retriever):
    pack = build_context(retriever, QUERY, budget_tokens=6000, filters=Filters(context="activist"), patterns=3)
    assert pack.patterns and len(pack.patterns) + len(pack.below_floor) == 3  # the others are under the relevance floor
    assert "pull-based-replenishment#context-activist" in [p.cite for p in pack.passages]
    assert not any(p.role == "context-label" and not p.cite.endswith("#context-activist") for p in pack.passages)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget_tokens": 10}, "budget_tokens"),
        ({"budget_tokens": 10**6}, "budget_tokens"),
        ({"patterns": 0}, "patterns"),
        ({"patterns": 21}, "patterns"),
    ],
)
def test_out_of_range_arguments_name_the_field(retriever, kwargs, field):
    with pytest.raises(QueryError) as info:
        build_context(retriever, QUERY, **kwargs)
    assert info.value.field == field
    assert field in str(info.value)


def test_a_pack_takes_passages_only_from_hits_that_clear_its_floor(retriever):
    """Issue 28: the README's example query never fills its budget with unrelated text (no feature-flag passage), and
    the pack states its floor: the calibration's no-good-match threshold."""
    results = retriever.search(QUERY, k=5)
    pack = build_context(retriever, QUERY, budget_tokens=4000)
    assert pack.relevance_floor == results.relevance_threshold > 0
    above = [h.slug for h in results.hits if h.relevance >= pack.relevance_floor]
    assert [p.slug for p in pack.patterns] == above and above[0] == "pull-based-replenishment"
    assert list(pack.below_floor) == [h.slug for h in results.hits if h.relevance < pack.relevance_floor]
    assert {p.slug for p in pack.passages} <= set(above)
    assert not any("feature flag" in p.text.lower() or p.slug == "progressive-rollout" for p in pack.passages)
    nonsense = build_context(retriever, "xyzzy plugh qwrtz", budget_tokens=2000)
    assert (nonsense.passages, nonsense.tokens, len(nonsense.below_floor)) == ((), 0, 5)
