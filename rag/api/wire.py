"""The HTTP API's answers (rag.serve.wire's JSON) read back into the records an opened index answers with.

Keys a record does not know are ignored (a newer server's additions); a missing one raises KeyError or TypeError,
which the client reports as a server that is not a `rag serve` of this version.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rag.api.answers import PatternAnswer, RelatedAnswer, SimilarAnswer
from rag.records.pattern import Community, Entity, Lifecycle, Pattern, Provenance, Relationship, Section
from rag.records.results import Results
from rag.search.browse import PatternBrief, PatternPage
from rag.search.context import ContextPack, PackedPattern, Passage
from rag.search.filters import Facets
from rag.search.graph import RelatedPattern, SimilarPattern

FACET_NAMES = ("domains", "contexts", "statuses", "confidences")


def known(record: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of `data` that are fields of `record`."""
    names = {f.name for f in fields(record)}
    return {k: v for k, v in data.items() if k in names}


def results(data: dict[str, Any]) -> Results:
    return Results.from_dict(data)


def pattern_answer(data: dict[str, Any]) -> PatternAnswer:
    return PatternAnswer(pattern(data["pattern"]), data.get("context"), data.get("context_label"), data["index_version"])


def pattern(data: dict[str, Any]) -> Pattern:
    """A pattern of GET /patterns/{slug} (`Pattern.to_dict` as sent), nested records included."""
    nested = {
        "lifecycle": known(Lifecycle, data.get("lifecycle") or {}),
        "provenance": known(Provenance, data.get("provenance") or {}),
        "relationships": [known(Relationship, r) for r in data.get("relationships") or ()],
        "entities": [known(Entity, e) for e in data.get("entities") or ()],
        "communities": [known(Community, c) for c in data.get("communities") or ()],
        "sections": [known(Section, s) for s in data.get("sections") or ()],
    }
    return Pattern.from_dict({**data, **nested})


def related_answer(data: dict[str, Any]) -> RelatedAnswer:
    related = tuple(RelatedPattern(**known(RelatedPattern, r)) for r in data["related"])
    return RelatedAnswer(data["slug"], data["title"], related, tuple(data.get("dangling_targets") or ()), data["index_version"])


def similar_answer(data: dict[str, Any]) -> SimilarAnswer:
    similar = tuple(SimilarPattern(**known(SimilarPattern, s)) for s in data["similar"])
    return SimilarAnswer(data["slug"], data["title"], similar, data["index_version"])


def facets(data: dict[str, Any]) -> Facets:
    return Facets(**{name: tuple((v["value"], v["count"]) for v in data.get(name) or ()) for name in FACET_NAMES})


def pattern_page(data: dict[str, Any]) -> PatternPage:
    briefs = tuple(PatternBrief(**{**known(PatternBrief, p), "domains": tuple(p["domains"])}) for p in data["patterns"])
    return PatternPage(dict(data["filters"]), data["total"], data["offset"], data["limit"], briefs)


def context_pack(data: dict[str, Any]) -> ContextPack:
    return ContextPack(
        **{
            **known(ContextPack, data),
            "filters": dict(data["filters"]),
            "patterns": tuple(PackedPattern(**known(PackedPattern, p)) for p in data["patterns"]),
            "passages": tuple(Passage(**known(Passage, p)) for p in data["passages"]),
            "below_floor": tuple(data.get("below_floor") or ()),
        }
    )
