"""Result records: what a search returns, with the evidence and scores that explain each rank."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Evidence:
    chunk_id: str
    section: str
    role: str
    snippet: str
    score: float  # the chunk's similarity under the retriever that found it
    retriever: str
    highlights: tuple[tuple[int, int], ...] = ()  # (start, end) character offsets in `snippet` of the matched query terms


@dataclass(frozen=True, slots=True)
class RetrieverScore:
    rank: int  # 1-based rank of the pattern in that retriever's list
    score: float  # that retriever's raw score (cosine for dense, BM25 for lexical, Dice for names)


@dataclass(frozen=True, slots=True)
class Hit:
    slug: str
    title: str
    summary: str
    domains: tuple[str, ...]
    rank: int
    score: float
    retrievers: dict[str, RetrieverScore]
    evidence: tuple[Evidence, ...]
    context: str | None = None
    context_label: str | None = None
    name_match: str | None = None  # the title or alias that matched the query as a name
    duplicates: tuple[str, ...] = ()  # near-duplicates grouped under this hit (opt-in)
    pinned: bool = False  # first because the query is its name (pinned hits lead, by name similarity)
    relevance: float = 0.0  # calibrated probability that the hit answers the query, comparable across queries

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Results:
    query: str
    k: int
    filters: dict
    hits: tuple[Hit, ...]
    index_version: str
    fusion: dict
    timings_ms: dict[str, float] = field(default_factory=dict)
    no_good_match: bool = False  # nothing in the library fits: the best hit's relevance is below the threshold
    relevance_threshold: float = 0.0  # the relevance under which the best hit means "no good match"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def slugs(self) -> list[str]:
        return [h.slug for h in self.hits]
