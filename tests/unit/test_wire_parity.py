"""Every field of a record reaches the wire: HTTP, MCP and CLI --json share these models (rag.serve.wire).

A field added to a record must be added to its wire model, or listed here as deliberately left out
with the reason; otherwise it would silently disappear from every face.
"""

from __future__ import annotations

import dataclasses

import pytest

from rag.records import pattern as records
from rag.records.results import Evidence, Hit, Results, RetrieverScore
from rag.search.browse import PatternBrief, PatternPage
from rag.search.context import ContextPack, PackedPattern, Passage
from rag.search.graph import RelatedPattern, SimilarPattern
from rag.serve import wire

LEFT_OUT: dict[tuple[type, str], str] = {}  # (record, field) -> why it is not served; none today

PAIRS = [
    (records.Pattern, wire.PatternOut),
    (records.Section, wire.SectionOut),
    (records.Relationship, wire.RelationshipOut),
    (records.Lifecycle, wire.LifecycleOut),
    (records.Entity, wire.EntityOut),
    (records.Community, wire.CommunityOut),
    (records.Provenance, wire.ProvenanceOut),
    (Hit, wire.HitOut),
    (Evidence, wire.EvidenceOut),
    (RetrieverScore, wire.RetrieverScoreOut),
    (Results, wire.SearchResponse),
    (RelatedPattern, wire.RelatedOut),
    (SimilarPattern, wire.SimilarOut),
    (Passage, wire.PassageOut),
    (PackedPattern, wire.PackedPatternOut),
    (ContextPack, wire.ContextResponse),
    (PatternBrief, wire.PatternBriefOut),
    (PatternPage, wire.PatternListResponse),
]


def wire_names(model) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()} | set(model.model_fields)


def missing_fields(record, model) -> list[str]:
    return [f.name for f in dataclasses.fields(record) if f.name not in wire_names(model) and (record, f.name) not in LEFT_OUT]


@pytest.mark.parametrize(("record", "model"), PAIRS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_every_record_field_is_on_the_wire(record, model):
    missing = missing_fields(record, model)
    assert not missing, f"{record.__name__} fields missing from {model.__name__}: {missing} (add them, or to LEFT_OUT with a reason)"


def test_a_new_record_field_is_caught():
    @dataclasses.dataclass(frozen=True)
    class Grown(Evidence):
        highlight: tuple[int, int] = (0, 0)

    assert missing_fields(Grown, wire.EvidenceOut) == ["highlight"]
