"""Token-budgeted context packs for LLMs: the sections of the best patterns most worth reading, each citable.

The retriever ranks patterns; their passages (chunks) are then offered by value to the asker, in three
tiers, each over the patterns best first: (1) Solution and Problem; (2) Implementation and Consequences;
(3) the rest: the chunks that matched the query, the filtered context's label, the summary, then the
other sections. Greedy packing keeps every passage that still fits, so a long section does not block
shorter later ones (but a section's later parts are dropped once one part did not fit).

Only hits whose calibrated relevance clears the pack's floor contribute: the calibration's no-good-match
threshold (`Results.relevance_threshold`), under which a best hit means "nothing here fits". On the judged dev
queries (top 5 hits; patterns, bmn, commons-os) that floor keeps 65%, 69% and 78% of the judged-relevant hits,
drops 90%, 79% and 56% of the others, and every hit of the 40 queries with no answer, so a budget is not filled
with unrelated text; of the floors tried from 0 to 0.3, it gives the kept hits the best or nearly the best F1
(0.70, 0.64, 0.61; 0.49, 0.47, 0.53 with no floor). The pack states its floor and names the hits left under it.

The budget counts the passages as they are sent: each passage costs the tokens of the compact JSON
object `{"cite":"slug#section","text":"..."}` plus its separator, in the model tokenizer's word pieces
(`rag.chunking.model_token_counter`). A face adds only a fixed framing around them (the index version,
the counts, one line of text), so what it returns is at most the budget plus that framing; the text is
never sent twice (`ContextPack.markdown` renders the same passages for people, on demand).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from rag.chunking import TokenCounter, model_token_counter
from rag.errors import QueryError
from rag.records.results import Hit
from rag.search.filters import Filters
from rag.search.retriever import Retriever

MIN_BUDGET = 50
MAX_BUDGET = 32_000
MAX_PATTERNS = 20
QUERY_ECHO_CHARS = 200
TIERS = (("solution", "problem"), ("implementation", "consequences"))  # then the rest, matched chunks first
_REST = ("context-label", "summary", "context", "tension", "known-uses", "cognitive-era", "vitality", "other")

Reason = Literal["core", "practice", "evidence", "more"]
_TIER_REASON: tuple[Reason, ...] = ("core", "practice")


@dataclass(frozen=True, slots=True)
class Passage:
    cite: str  # the chunk id, `slug#section` (or `slug#section-N` for a part of a long section)
    slug: str
    title: str
    section: str
    role: str
    text: str
    tokens: int  # of the passage as sent: its {"cite","text"} JSON object and separator
    pattern_rank: int
    reason: Reason  # core: Solution/Problem; practice: Implementation/Consequences; evidence: matched the query; more: the rest


@dataclass(frozen=True, slots=True)
class PackedPattern:
    slug: str
    title: str
    rank: int
    score: float


@dataclass(frozen=True, slots=True)
class ContextPack:
    query: str
    index_version: str
    filters: dict
    budget_tokens: int
    tokens: int  # of the passages as sent (never more than budget_tokens)
    patterns: tuple[PackedPattern, ...]  # the patterns with at least one passage, by rank
    passages: tuple[Passage, ...]  # by pattern rank, then document order
    skipped: int  # candidate passages that did not fit the budget
    relevance_floor: float = 0.0  # hits under this relevance gave no passage (the calibration's no-good-match threshold)
    below_floor: tuple[str, ...] = ()  # the slugs of the top hits left out for it, by rank

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def markdown(self) -> str:
        """The same passages for people: a heading per pattern and per passage, each passage cited in brackets."""
        blocks = [f"# Context for: {_shown(self.query)}"]
        if self.below_floor:
            left = ", ".join(self.below_floor)
            blocks.append(f"(Only patterns with relevance at least {self.relevance_floor:.2f}; left out: {left}.)")
        titles = {p.slug: p for p in self.patterns}
        current = None
        for passage in self.passages:
            if passage.slug != current:
                current = passage.slug
                blocks.append(f"## {titles[current].rank}. {titles[current].title} [{current}]")
            blocks.append(f"### {passage.section} [{passage.cite}]\n\n{passage.text}")
        return "\n\n".join(blocks) + "\n"


def passage_json(cite: str, text: str) -> str:
    """A passage as the faces send it (and as the budget counts it): compact JSON, non-ASCII kept."""
    return json.dumps({"cite": cite, "text": text}, ensure_ascii=False, separators=(",", ":"))


def build_context(
    retriever: Retriever,
    query: str,
    budget_tokens: int = 2000,
    filters: Filters = Filters(),
    patterns: int = 5,
    count: TokenCounter | None = None,
) -> ContextPack:
    """Search, then pack the best passages of the top `patterns` hits into at most `budget_tokens` tokens."""
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or not MIN_BUDGET <= budget_tokens <= MAX_BUDGET:
        raise QueryError("budget_tokens", f"budget_tokens must be between {MIN_BUDGET} and {MAX_BUDGET}, got {budget_tokens}")
    if isinstance(patterns, bool) or not isinstance(patterns, int) or not 1 <= patterns <= MAX_PATTERNS:
        raise QueryError("patterns", f"patterns must be between 1 and {MAX_PATTERNS}, got {patterns}")
    results = retriever.search(query, k=patterns, filters=filters)
    floor = results.relevance_threshold
    hits = tuple(h for h in results.hits if h.relevance >= floor)
    count = count or model_token_counter()
    index = retriever.index

    used = 0
    chosen: dict[int, tuple[Hit, Reason, int]] = {}  # chunk row -> (hit, reason, tokens)
    skipped: set[int] = set()
    cut_sections: set[tuple[str, str]] = set()  # (slug, section) of which a part did not fit
    for chunk_row, hit, reason in _candidates(retriever, hits, results.filters.get("context")):
        chunk = index.chunks[chunk_row]
        if chunk_row in chosen:
            continue
        cost = count([passage_json(chunk.id, chunk.body)])[0] + 1  # + the separator
        if used + cost > budget_tokens or (chunk.slug, chunk.section) in cut_sections:
            skipped.add(chunk_row)
            cut_sections.add((chunk.slug, chunk.section))
            continue
        chosen[chunk_row] = (hit, reason, cost)
        used += cost

    passages: list[Passage] = []
    packed: list[PackedPattern] = []
    for hit in hits:
        mine = sorted(row for row, (h, _, _) in chosen.items() if h.slug == hit.slug)
        if mine:
            packed.append(PackedPattern(hit.slug, hit.title, hit.rank, hit.score))
        for row in mine:
            chunk = index.chunks[row]
            _, reason, cost = chosen[row]
            passages.append(Passage(chunk.id, chunk.slug, hit.title, chunk.section, chunk.role, chunk.body, cost, hit.rank, reason))
    return ContextPack(
        query=results.query,
        index_version=results.index_version,
        filters=results.filters,
        budget_tokens=budget_tokens,
        tokens=used,
        patterns=tuple(packed),
        passages=tuple(passages),
        skipped=len(skipped - chosen.keys()),
        relevance_floor=floor,
        below_floor=tuple(h.slug for h in results.hits if h.relevance < floor),
    )


def _candidates(retriever: Retriever, hits, context: str | None):
    """(chunk row, hit, reason) in the order of value: the tiers, each over the hits best first; repeats
    are dropped by the caller."""
    index = retriever.index
    rows_of_hit = {hit.slug: _chunk_rows(retriever, hit.slug) for hit in hits}
    row_of = {index.chunks[row].id: row for rows in rows_of_hit.values() for row in rows}

    def wanted_label(row: int) -> bool:  # only the filtered context's label, if any
        chunk = index.chunks[row]
        return chunk.role != "context-label" or (context is not None and chunk.context == context)

    for roles, reason in zip(TIERS, _TIER_REASON):
        for hit in hits:
            for role in roles:
                for row in rows_of_hit[hit.slug]:
                    if index.chunks[row].role == role:
                        yield row, hit, reason
    rank = {role: n for n, role in enumerate(_REST)}
    for hit in hits:
        for ev in hit.evidence:
            if ev.chunk_id in row_of and wanted_label(row_of[ev.chunk_id]):
                yield row_of[ev.chunk_id], hit, "evidence"
        rows = [r for r in rows_of_hit[hit.slug] if wanted_label(r)]
        for row in sorted(rows, key=lambda r: (rank.get(index.chunks[r].role, len(_REST)), r)):
            yield row, hit, "more"


def _chunk_rows(retriever: Retriever, slug: str) -> list[int]:
    index = retriever.index
    return index.chunk_rows(index.slug_row[slug]).tolist()


def _shown(query: str) -> str:
    shown = query if len(query) <= QUERY_ECHO_CHARS else query[: QUERY_ECHO_CHARS - 3] + "..."
    return " ".join(shown.split())
