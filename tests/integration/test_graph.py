"""The pattern graph: curated edges both ways, dangling targets skipped; "more like this" vs a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest

from rag.records.pattern import Pattern, Relationship
from rag.search.graph import Graph, RelatedPattern, similar


def pattern(slug: str, *edges: tuple[str, str, float | None]) -> Pattern:
    return Pattern(
        slug=slug,
        title=slug.title(),
        path=f"{slug}.md",
        schema="ontology",
        relationships=tuple(Relationship(kind, target, weight) for kind, target, weight in edges),
    )


# kanban enables flow (0.9) and needs a missing "ghost"; flow and kanban call each other complementary;
# cards requires kanban (unweighted); an edge to itself is ignored.
TINY = (
    pattern("kanban", ("enables", "flow", 0.9), ("complementary", "flow", 0.5), ("requires", "ghost", 1.0), ("related", "kanban", 1.0)),
    pattern("flow", ("complementary", "kanban", 0.7)),
    pattern("cards", ("requires", "kanban", None)),
)


def test_related_reads_outgoing_and_incoming_edges_and_skips_dangling_targets():
    graph = Graph(TINY)
    assert graph.dangling == 1
    assert graph.edges == 4
    assert graph.related("kanban") == (
        RelatedPattern("flow", "Flow", "enables", "enables", "outgoing", 0.9),
        RelatedPattern("flow", "Flow", "complementary", "complementary", "both", 0.7),
        RelatedPattern("cards", "Cards", "requires", "required_by", "incoming", None),
    )


def test_incoming_edges_are_inverted():
    graph = Graph(TINY)
    assert graph.related("flow") == (
        RelatedPattern("kanban", "Kanban", "enables", "enabled_by", "incoming", 0.9),
        RelatedPattern("kanban", "Kanban", "complementary", "complementary", "both", 0.7),
    )
    assert [r.relation for r in graph.related("cards")] == ["requires"]
    assert graph.related("kanban", direction="incoming") == (
        RelatedPattern("flow", "Flow", "complementary", "complementary", "incoming", 0.7),
        RelatedPattern("cards", "Cards", "requires", "required_by", "incoming", None),
    )


def test_unknown_slug_raises():
    with pytest.raises(KeyError):
        Graph(TINY).related("ghost")


def test_related_of_a_real_pattern_lists_its_curated_edges(search_index):
    graph = Graph(search_index.patterns)
    slug = "pull-based-replenishment"
    curated = {(r.target, r.kind) for r in search_index.pattern(slug).relationships}
    outgoing = {(r.slug, r.kind) for r in graph.related(slug) if r.direction in ("outgoing", "both")}
    assert outgoing == curated
    assert ("work-in-progress-limits", "complementary") in curated
    declared_by_others = {p.slug for p in search_index.patterns for r in p.relationships if r.target == slug}
    assert {r.slug for r in graph.related(slug) if r.direction in ("incoming", "both")} == declared_by_others


def oracle(index, slug: str) -> list[tuple[str, float]]:
    """Brute force: every chunk vector, cosine to the pattern's normalized mean, max per other pattern."""
    row = index.slug_row[slug]
    vectors = index.vectors.reconstruct(np.arange(len(index.chunks)))
    mean = vectors[index.chunk_pattern == row].mean(axis=0)
    scores = vectors @ (mean / np.linalg.norm(mean))
    best: dict[str, float] = {}
    for chunk, score in zip(index.chunks, scores.tolist()):
        if chunk.slug != slug:
            best[chunk.slug] = max(best.get(chunk.slug, -1.0), score)
    return sorted(best.items(), key=lambda kv: -kv[1])


def test_similar_matches_a_brute_force_oracle(search_index):
    got = similar(search_index, "pull-based-replenishment", k=7)
    expected = oracle(search_index, "pull-based-replenishment")[:7]
    assert [s.slug for s in got] == [slug for slug, _ in expected]
    assert [s.score for s in got] == pytest.approx([score for _, score in expected], abs=1e-5)
    assert "pull-based-replenishment" not in [s.slug for s in got]
    assert all(s.chunk_id.split("#")[0] == s.slug for s in got)


def test_similar_respects_a_pattern_mask(search_index):
    mask = np.array(["finance" in p.domains for p in search_index.patterns])
    got = similar(search_index, "pull-based-replenishment", k=50, pattern_mask=mask)
    assert got and all("finance" in search_index.pattern(s.slug).domains for s in got)
    assert len(got) == int(mask.sum()) - 1  # every finance pattern but itself
