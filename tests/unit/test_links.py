"""Relationship targets named by title or alias resolve to slugs (marked so); the rest are reported as dangling."""

from __future__ import annotations

from rag.load.library import load_library
from rag.load.links import Resolution, TargetResolver
from rag.records.pattern import Pattern, Relationship
from rag.search.graph import Graph, RelatedPattern
from rag.serve.wire import RelatedResponse
from support import front_matter, write_pattern


def library(tmp_path):
    write_pattern(tmp_path, "fixed-fee", front_matter("fixed-fee", "Subscription Model", aliases=["Flat Rate", "Pay Per Use"]))
    write_pattern(tmp_path, "metered", front_matter("metered", "Usage-Based Pricing", aliases=["pay-per-use", "Metering"]))
    write_pattern(
        tmp_path,
        "source",
        front_matter(
            "source",
            relationships={
                "enables": [{"slug": "subscription-model", "weight": 0.9}, {"slug": "metered", "weight": 0.8}],
                "complementary": ["metering", "pay-per-use", "ghost-pattern"],
            },
        ),
    )
    return load_library(tmp_path)


def test_targets_resolve_by_title_then_alias_and_are_marked(tmp_path):
    report = library(tmp_path)
    source = next(p for p in report.patterns if p.slug == "source")
    assert source.relationships == (
        Relationship("enables", "fixed-fee", 0.9, "", "title", "subscription-model"),
        Relationship("enables", "metered", 0.8),
        Relationship("complementary", "metered", None, "", "alias", "metering"),
        Relationship("complementary", "pay-per-use"),
        Relationship("complementary", "ghost-pattern"),
    )
    assert [(p.path, p.reason) for p in report.problems] == [
        ("source.md", "dangling relationship: 'pay-per-use' is not a slug and names several patterns (fixed-fee, metered); use one's slug"),
        ("source.md", "dangling relationship: 'ghost-pattern' is not in the library"),
    ]


def test_a_title_wins_over_an_alias_and_a_pattern_never_resolves_to_itself():
    a = Pattern(slug="a", title="Commons", path="a.md", schema="ontology", aliases=("Shared Pool",))
    b = Pattern(slug="b", title="Shared Pool", path="b.md", schema="ontology", aliases=("commons",))
    resolver = TargetResolver.of([a, b])
    assert resolver.resolve("shared_pool", "a") == Resolution("b", "title")
    assert resolver.resolve("Shared Pool", "b") == Resolution("a", "alias")
    assert resolver.resolve("commons", "a") == Resolution("b", "alias")
    assert resolver.resolve("nothing", "a") == Resolution(None)


def test_the_graph_resolves_names_of_an_older_index_and_counts_dangling_targets():
    target = Pattern(slug="fixed-fee", title="Subscription Model", path="f.md", schema="ontology")
    source = Pattern(
        slug="source",
        title="Source",
        path="s.md",
        schema="ontology",
        relationships=(
            Relationship("enables", "subscription-model", 0.9),
            Relationship("enables", "ghost"),
            Relationship("related", "phantom"),
        ),
    )
    graph = Graph([target, source])
    assert graph.related("source") == (
        RelatedPattern("fixed-fee", "Subscription Model", "enables", "enables", "outgoing", 0.9, "", "title"),
    )
    assert graph.related("fixed-fee") == (RelatedPattern("source", "Source", "enables", "enabled_by", "incoming", 0.9, "", "title"),)
    assert graph.dangling == 2
    assert graph.dangling_of("source") == ("ghost", "phantom")
    body = RelatedResponse.of("v1", source, graph.related("source"), graph.dangling_of("source")).model_dump()
    assert body["dangling"] == 2 and body["dangling_targets"] == ["ghost", "phantom"]
    assert body["note"] == "2 curated relationship target(s) of source name no pattern of this library (1 resolved); see dangling_targets"
    assert body["related"][0]["resolved_by"] == "title"


def test_related_says_nothing_when_no_target_is_dangling():
    p = Pattern(slug="alone", title="Alone", path="a.md", schema="ontology")
    body = RelatedResponse.of("v1", p, ()).model_dump()
    assert (body["dangling"], body["dangling_targets"], body["note"]) == (0, [], None)
