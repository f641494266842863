"""Request and response models of the HTTP API (also the MCP tools' structured results).

Converters from the library's records live here too, so routes and tools stay one line each.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rag.config import RetrieverSettings
from rag.records.pattern import Pattern
from rag.records.request import SearchRequest
from rag.records.results import Evidence, Hit, Results
from rag.search.browse import PatternPage
from rag.search.context import MAX_BUDGET, MAX_PATTERNS, MIN_BUDGET, ContextPack
from rag.search.filters import CONFIDENCE_SCALE, Facets, Filters
from rag.search.graph import RelatedPattern, SimilarPattern

_DEFAULTS = RetrieverSettings()
MAX_K = _DEFAULTS.max_k
MAX_QUERY_CHARS = _DEFAULTS.max_query_chars
STRICT = ConfigDict(extra="forbid", strict=True)  # no silent coercion of request bodies ("10" -> 10, 0 -> false)


def _whole_number(value: Any) -> Any:
    """JSON Schema counts 17.0 as an integer; accept it (17.5, "17" and true stay errors)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole_number)]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong and what to do.")
    field: str | None = Field(None, description="The request field at fault (dotted for nested fields).")
    valid: list[str] | None = Field(None, description="Valid values, for an unknown filter value.")
    suggestions: list[str] | None = Field(None, description="Close slugs, for an unknown slug.")


class FiltersIn(BaseModel):
    model_config = STRICT

    domain: str | None = Field(None, description="A domain from GET /facets.", examples=["operations"])
    context: str | None = Field(
        None, description="A context from GET /facets; hits then carry that context's label.", examples=["activist"]
    )
    status: str | None = Field(None, description="A lifecycle status from GET /facets.", examples=["stable"])
    min_confidence: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="Lowest confidence on the 0-1 scale (1.0 = five stars; see /facets)."
    )

    def to_filters(self) -> Filters:
        return Filters(self.domain, self.context, self.status, self.min_confidence)


class SearchBody(BaseModel):
    """The body of POST /search (the wire form of `rag.records.request.SearchRequest`)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SearchRequest")

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="A situation in plain words, or a pattern's name.",
        examples=["our shelves are full of stock nobody ordered"],
    )
    k: Whole = Field(10, ge=1, le=MAX_K, description="Number of patterns to return.")
    offset: Whole = Field(0, ge=0, le=MAX_K - 1, description=f"Skip this many hits first (paging); offset + k is at most {MAX_K}.")
    filters: FiltersIn = Field(default_factory=FiltersIn)
    group_duplicates: bool = Field(False, description="Fold near-duplicate patterns under the best one.")
    reader: str | None = Field(
        None, max_length=100, description="Rank and label for this context (corporate, government, ...) without filtering; see /facets."
    )
    explain: bool = Field(False, description="Add each retriever's rank and score, the fusion settings and timings.")

    def to_record(self) -> SearchRequest:
        return SearchRequest(self.query, self.k, self.offset, self.filters.to_filters(), self.group_duplicates, self.reader)


class ContextRequest(BaseModel):
    model_config = STRICT

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What the context is for.",
        examples=["our shelves are full of stock nobody ordered"],
    )
    budget_tokens: Whole = Field(
        2000,
        ge=MIN_BUDGET,
        le=MAX_BUDGET,
        description="Most tokens (model word pieces) of passages, each counted as its {cite, text} compact JSON.",
    )
    patterns: Whole = Field(5, ge=1, le=MAX_PATTERNS, description="How many top patterns may contribute passages.")
    filters: FiltersIn = Field(default_factory=FiltersIn)


class EvidenceOut(BaseModel):
    chunk_id: str = Field(description="Citable id, slug#section.")
    section: str
    role: str
    snippet: str
    score: float
    retriever: str
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="(start, end) character offsets in `snippet` of the words matching the query."
    )


class RetrieverScoreOut(BaseModel):
    rank: int
    score: float


class HitOut(BaseModel):
    slug: str
    title: str
    summary: str
    domains: list[str]
    rank: int
    score: float = Field(description="Fused score; with explain, `fusion` names the method.")
    evidence: list[EvidenceOut] = Field(description="The sections that matched, best first.")
    context: str | None = None
    context_label: str | None = Field(None, description="The pattern's name in the filtered context.")
    name_match: str | None = Field(None, description="The title or alias the query matched as a name.")
    duplicates: list[str] = Field(default_factory=list, description="Near-duplicates grouped under this hit.")
    pinned: bool = Field(False, description="First because the query is this pattern's name.")
    relevance: float = Field(0.0, description="Calibrated probability (0-1) that the hit answers the query; comparable across queries.")
    retrievers: dict[str, RetrieverScoreOut] | None = Field(None, description="With explain: each retriever's rank and raw score.")


class FiltersOut(BaseModel):
    domain: str | None = None
    context: str | None = None
    status: str | None = None
    min_confidence: float | None = None


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int = Field(0, description="Hits skipped before these; ranks stay absolute (the first hit has rank offset + 1).")
    next_offset: int | None = Field(None, description="The offset of the next page (send it as `offset`); null on the last one.")
    index_version: str = Field(description="The index build that answered.")
    filters: FiltersOut
    hits: list[HitOut]
    fusion: dict[str, Any] | None = Field(None, description="With explain: the fusion method and its parameters.")
    timings_ms: dict[str, float] | None = Field(None, description="With explain: milliseconds per stage.")
    no_good_match: bool = Field(
        False, description="True when nothing in the library fits (the best relevance is below relevance_threshold)."
    )
    relevance_threshold: float = Field(0.0, description="The relevance under which the best hit means no good match.")

    @classmethod
    def of(cls, results: Results, explain: bool = False) -> SearchResponse:
        """Built from the records once, without validating them again (they are the library's own)."""
        return cls.model_construct(
            query=results.query,
            k=results.k,
            offset=results.offset,
            next_offset=results.next_offset,
            index_version=results.index_version,
            filters=FiltersOut.model_construct(**results.filters),
            hits=[_hit(h, explain) for h in results.hits],
            fusion=results.fusion if explain else None,
            timings_ms=results.timings_ms if explain else None,
            no_good_match=results.no_good_match,
            relevance_threshold=results.relevance_threshold,
        )


def _hit(h: Hit, explain: bool) -> HitOut:
    return HitOut.model_construct(
        slug=h.slug,
        title=h.title,
        summary=h.summary,
        domains=list(h.domains),
        rank=h.rank,
        score=h.score,
        evidence=[_evidence(e) for e in h.evidence],
        context=h.context,
        context_label=h.context_label,
        name_match=h.name_match,
        duplicates=list(h.duplicates),
        pinned=h.pinned,
        relevance=h.relevance,
        retrievers={name: RetrieverScoreOut.model_construct(rank=r.rank, score=r.score) for name, r in h.retrievers.items()}
        if explain
        else None,
    )


def _evidence(e: Evidence) -> EvidenceOut:
    return EvidenceOut.model_construct(
        chunk_id=e.chunk_id,
        section=e.section,
        role=e.role,
        snippet=e.snippet,
        score=e.score,
        retriever=e.retriever,
        highlights=[tuple(span) for span in e.highlights],
    )


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, serialized once (a route returning a Response skips FastAPI's second validation)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


class SectionOut(BaseModel):
    title: str
    role: str
    level: int
    text: str
    line: int


class RelationshipOut(BaseModel):
    kind: str
    target: str = Field(description="A slug when the target is in the library; else the target as written (dangling).")
    weight: float | None = None
    description: str = ""
    resolved_by: Literal["title", "alias"] | None = Field(
        None, description="Set when the file named the target by its title or an alias, not its slug."
    )
    written: str | None = Field(None, description="The target as the file wrote it, when resolved by title or alias.")


class LifecycleOut(BaseModel):
    status: str | None = None
    confidence: float | None = Field(None, description="0-1 (1.0 = five stars), one scale for both schema generations.")
    confidence_stars: float | None = Field(None, description="The 1-5 star rating as the file wrote it, when it used stars.")
    version: str | None = None
    usage_stage: str | None = None
    adoption_stage: str | None = None


class EntityOut(BaseModel):
    id: str
    type: str = ""
    label: str = ""
    relevance: float | None = None


class CommunityOut(BaseModel):
    id: str
    label: str = ""
    source: str = ""
    confidence: float | None = None


class ProvenanceOut(BaseModel):
    contributors: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    license: str | None = None
    attribution: str | None = None
    collection: str | None = None


class PatternOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    slug: str
    title: str
    id: str | None = None
    path: str = Field(description="Source file, relative to the library folder.")
    schema_: str = Field(alias="schema", description="Front-matter generation: ontology (newest) or classification.")
    aliases: list[str]
    summary: str
    epigraph: str
    context_labels: dict[str, str] = Field(description="The pattern's name in each context.")
    domains: list[str]
    domain: str | None = None
    cross_domains: list[str]
    legacy_domain: str | None = None
    commons_domains: list[str]
    tension: str
    keywords: list[str]
    scores: dict[str, float]
    overall_score: float | None = None
    lifecycle: LifecycleOut
    relationships: list[RelationshipOut]
    entities: list[EntityOut]
    communities: list[CommunityOut]
    provenance: ProvenanceOut
    sections: list[SectionOut]
    content_hash: str


class PatternResponse(BaseModel):
    index_version: str
    context: str | None = Field(None, description="The context the pattern is seen from, when one was asked for.")
    context_label: str | None = Field(None, description="The pattern's name in that context (null if it has none).")
    pattern: PatternOut

    @classmethod
    def of(cls, version: str, pattern: Pattern, context: str | None, label: str | None) -> PatternResponse:
        return cls(index_version=version, context=context, context_label=label, pattern=PatternOut.model_validate(pattern.to_dict()))


class RelatedOut(BaseModel):
    slug: str
    title: str
    kind: str = Field(description="The relationship kind as curated in the declaring file.")
    relation: str = Field(description="Read from the asked pattern: '<asked> <relation> <slug>' (inverted for incoming edges).")
    direction: Literal["outgoing", "incoming", "both"] = Field(
        description="outgoing: declared by the asked pattern; incoming: declared by the other; both: by each."
    )
    weight: float | None = None
    description: str = ""
    resolved_by: Literal["title", "alias"] | None = Field(
        None, description="Set when the declaring file named this pattern by its title or an alias, not its slug."
    )


class RelatedResponse(BaseModel):
    index_version: str
    slug: str
    title: str
    related: list[RelatedOut]
    dangling: int = Field(
        0, description="Curated targets of this pattern that name no pattern of the library (no slug, id, title or alias matches)."
    )
    dangling_targets: list[str] = Field(default_factory=list, description="Those targets, as written.")
    note: str | None = Field(None, description="Why `related` is short or empty, when curated edges point outside the library.")

    @classmethod
    def of(cls, version: str, pattern: Pattern, related: tuple[RelatedPattern, ...], dangling: tuple[str, ...] = ()) -> RelatedResponse:
        note = None
        if dangling:
            kept = f"{len(related)} resolved" if related else "none resolved"
            note = (
                f"{len(dangling)} curated relationship target(s) of {pattern.slug} name no pattern of this library ({kept}); "
                "see dangling_targets"
            )
        related_out = [RelatedOut.model_validate(r, from_attributes=True) for r in related]
        return cls(
            index_version=version,
            slug=pattern.slug,
            title=pattern.title,
            related=related_out,
            dangling=len(dangling),
            dangling_targets=list(dangling),
            note=note,
        )


class SimilarOut(BaseModel):
    slug: str
    title: str
    score: float = Field(description="Cosine between the asked pattern's mean vector and this pattern's best chunk.")
    chunk_id: str = Field(description="That best chunk, slug#section.")


class SimilarResponse(BaseModel):
    index_version: str
    slug: str
    title: str
    similar: list[SimilarOut]

    @classmethod
    def of(cls, version: str, pattern: Pattern, similar: tuple[SimilarPattern, ...]) -> SimilarResponse:
        return cls(
            index_version=version,
            slug=pattern.slug,
            title=pattern.title,
            similar=[SimilarOut.model_validate(s, from_attributes=True) for s in similar],
        )


class PatternBriefOut(BaseModel):
    slug: str
    title: str
    summary: str
    domains: list[str]
    status: str | None = None
    confidence: float | None = None
    context_label: str | None = Field(None, description="The pattern's name in the filtered context.")


class PatternListResponse(BaseModel):
    index_version: str
    filters: FiltersOut
    total: int = Field(description="Patterns passing the filters, over all pages.")
    offset: int
    limit: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last one.")
    patterns: list[PatternBriefOut] = Field(description="In title order.")

    @classmethod
    def of(cls, version: str, page: PatternPage) -> PatternListResponse:
        briefs = [PatternBriefOut.model_validate(p, from_attributes=True) for p in page.patterns]
        return cls(
            index_version=version,
            filters=FiltersOut.model_validate(page.filters),
            total=page.total,
            offset=page.offset,
            limit=page.limit,
            next_offset=page.next_offset,
            patterns=briefs,
        )


class FacetValue(BaseModel):
    value: str
    count: int = Field(description="Patterns with this value.")


class FacetsResponse(BaseModel):
    index_version: str
    domains: list[FacetValue]
    contexts: list[FacetValue]
    statuses: list[FacetValue]
    confidences: list[FacetValue] = Field(default_factory=list, description="Patterns per confidence value on the 0-1 scale.")
    confidence_scale: str = Field(description="How min_confidence reads confidence.")

    @classmethod
    def of(cls, version: str, facets: Facets) -> FacetsResponse:
        return cls(index_version=version, confidence_scale=CONFIDENCE_SCALE, **facets.to_dict())


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "error", "degraded"] = "ok"
    index_version: str | None = None
    patterns: int | None = None
    engine: str | None = Field(None, description="embedded (FAISS + bm25s files) or milvus.")
    reachable: bool | None = Field(None, description="Whether the engine answers now (false: searches get 503; retry later).")
    model_ready: bool | None = Field(None, description="Whether the model is loaded (the first search loads it otherwise).")
    device: str | None = Field(
        None, description="Where the serving encoder runs once loaded: cuda (a GPU, used when torch sees one) or cpu."
    )
    query_encoder: str | None = Field(
        None,
        description="What computes query vectors: numpy (the model's forward pass without torch, the CPU default) or torch "
        "(RAG_QUERY_ENCODER).",
    )
    detail: str | None = Field(None, description="Why the server cannot serve (status error or degraded).")
    worker: int | None = Field(None, description="The process that answered (one of several with `rag serve --workers N`).")


class LiveResponse(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyResponse(BaseModel):
    ready: bool
    status: Literal["ok", "loading", "error", "degraded"]
    index_version: str | None = None
    reason: str | None = Field(None, description="Why the server cannot search now (with 503 and Retry-After).")


class ModelOut(BaseModel):
    name: str | None = None
    dimension: int | None = None
    max_seq_length: int | None = None


class StatsResponse(BaseModel):
    index_version: str
    built_at: str | None = None
    loaded_at: str
    format_version: int | None = None
    package_version: str | None = None
    engine: str = "embedded"
    model: ModelOut
    device: str | None = Field(None, description="Where the build encoded (cpu or cuda); null for builds from before it was recorded.")
    counts: dict[str, int] = Field(description="patterns, chunks, files, problems, errors, edges.")
    vectors: dict[str, Any] = Field(description="The vector index kind and its parameters.")
    chunker: dict[str, Any]
    fusion: str


class PassageOut(BaseModel):
    cite: str = Field(description="Cite as this id: slug#section.")
    slug: str
    title: str
    section: str
    role: str
    text: str
    tokens: int = Field(description="What this passage costs of the budget: its {cite, text} as compact JSON.")
    pattern_rank: int
    reason: Literal["core", "practice", "evidence", "more"] = Field(
        description="core: Solution/Problem; practice: Implementation/Consequences; evidence: matched the query; more: the rest."
    )


class PackedPatternOut(BaseModel):
    slug: str
    title: str
    rank: int
    score: float


class ContextResponse(BaseModel):
    query: str
    index_version: str
    filters: FiltersOut
    budget_tokens: int
    tokens: int = Field(description="Tokens of the passages as {cite, text} compact JSON (never more than budget_tokens).")
    patterns: list[PackedPatternOut]
    passages: list[PassageOut] = Field(
        description="Solution and Problem first, then Implementation and Consequences, then the rest; by pattern rank, then document order."
    )
    skipped: int = Field(description="Candidate passages left out for lack of budget.")
    relevance_floor: float = Field(
        0.0, description="Only hits with at least this relevance (0-1) gave passages: the no-good-match threshold."
    )
    below_floor: list[str] = Field(default_factory=list, description="Slugs of the top hits left out for being under relevance_floor.")

    @classmethod
    def of(cls, pack: ContextPack) -> ContextResponse:
        return cls.model_validate(pack.to_dict())
