"""Result records: what a search returns, with the evidence and scores that explain each rank."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


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

    @classmethod
    def from_dict(cls, data: dict) -> Hit:
        """Inverse of `to_dict`; also reads a hit of the wire's JSON (lists for tuples, `retrievers` null
        without explain). Keys this record does not know are ignored (a newer server's additions)."""
        evidence = tuple(
            Evidence(**{**_known(Evidence, e), "highlights": tuple(tuple(h) for h in e.get("highlights") or ())})
            for e in data.get("evidence") or ()
        )
        return cls(
            **{
                **_known(cls, data),
                "domains": tuple(data.get("domains") or ()),
                "retrievers": {name: RetrieverScore(**_known(RetrieverScore, s)) for name, s in (data.get("retrievers") or {}).items()},
                "evidence": evidence,
                "duplicates": tuple(data.get("duplicates") or ()),
            }
        )


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
    offset: int = 0  # hits skipped before these (ranks stay absolute: the first hit has rank offset + 1)
    next_offset: int | None = None  # the offset of the next page; None when there is none

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        """Inverse of `to_dict`; also reads the wire's SearchResponse JSON (`rag search --server`), whose
        `fusion` and `timings_ms` are null without explain. Raises KeyError or TypeError when a field is missing."""
        return cls(
            **{
                **_known(cls, data),
                "filters": dict(data.get("filters") or {}),
                "hits": tuple(Hit.from_dict(h) for h in data["hits"]),
                "fusion": dict(data.get("fusion") or {}),
                "timings_ms": dict(data.get("timings_ms") or {}),
            }
        )

    @property
    def slugs(self) -> list[str]:
        return [h.slug for h in self.hits]


def _known(record: type, data: dict) -> dict:
    """The keys of `data` that are fields of `record`."""
    names = {f.name for f in fields(record)}
    return {k: v for k, v in data.items() if k in names}
