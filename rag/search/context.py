"""Token-budgeted context packs for LLMs: the best sections of the best patterns, each citable.

The retriever ranks patterns; candidate passages (chunks) are then taken pattern by pattern, best
first: the chunks that matched the query (evidence), then the pattern's Problem and Solution; after
every pattern has had its turn, their other sections (the summary and the filtered context's label
before the rest). Greedy packing keeps every passage that still fits, so a long section does not
block shorter later ones.

Tokens are the model tokenizer's word pieces (`rag.chunking.model_token_counter`); word-piece counts
add up over whitespace-joined text, so the pack's Markdown never exceeds the budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rag.records.chunk import Chunk
from rag.chunking import TokenCounter, model_token_counter
from rag.search.filters import Filters
from rag.records.results import Hit
from rag.errors import QueryError
from rag.search.retriever import Retriever

MIN_BUDGET = 50
MAX_BUDGET = 32_000
MAX_PATTERNS = 20
QUERY_ECHO_CHARS = 200
_CORE = ("problem", "solution")
_MORE = ("summary", "context-label", "implementation", "consequences", "context", "tension", "known-uses", "cognitive-era", "vitality", "other")

Reason = Literal["evidence", "core", "more"]


@dataclass(frozen=True, slots=True)
class Passage:
    cite: str  # the chunk id, `slug#section` (or `slug#section-N` for a part of a long section)
    slug: str
    title: str
    section: str
    role: str
    text: str
    tokens: int  # of the passage as rendered in the Markdown (heading included)
    pattern_rank: int
    reason: Reason  # evidence: matched the query; core: Problem/Solution; more: another section


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
    tokens: int  # of `markdown`
    patterns: tuple[PackedPattern, ...]  # the patterns with at least one passage, by rank
    passages: tuple[Passage, ...]  # in Markdown order: by pattern rank, then document order
    skipped: int  # candidate passages that did not fit the budget
    markdown: str

    def to_dict(self) -> dict:
        return asdict(self)


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
    count = count or model_token_counter()
    index = retriever.index

    header = _header(results.query, results.index_version)
    used = count([header])[0]
    chosen: dict[int, tuple[Hit, Reason]] = {}  # chunk row -> (hit, reason), in selection order
    opened: set[str] = set()  # patterns whose heading is already paid for
    skipped: set[int] = set()
    for chunk_row, hit, reason in _candidates(retriever, results.hits, results.filters.get("context")):
        if chunk_row in chosen:
            continue
        cost = count([_passage_block(index.chunks[chunk_row])])[0] + (0 if hit.slug in opened else count([_pattern_heading(hit)])[0])
        if used + cost > budget_tokens:
            skipped.add(chunk_row)
            continue
        chosen[chunk_row] = (hit, reason)
        opened.add(hit.slug)
        used += cost

    passages: list[Passage] = []
    blocks = [header]
    packed: list[PackedPattern] = []
    for hit in results.hits:
        mine = sorted(row for row, (h, _) in chosen.items() if h.slug == hit.slug)
        if not mine:
            continue
        packed.append(PackedPattern(hit.slug, hit.title, hit.rank, hit.score))
        blocks.append(_pattern_heading(hit))
        for row in mine:
            chunk = index.chunks[row]
            block = _passage_block(chunk)
            blocks.append(block)
            passages.append(Passage(chunk.id, chunk.slug, hit.title, chunk.section, chunk.role, _body(chunk.text), count([block])[0], hit.rank, chosen[row][1]))
    markdown = "\n\n".join(blocks) + "\n"
    return ContextPack(
        query=results.query,
        index_version=results.index_version,
        filters=results.filters,
        budget_tokens=budget_tokens,
        tokens=count([markdown])[0],
        patterns=tuple(packed),
        passages=tuple(passages),
        skipped=len(skipped - chosen.keys()),
        markdown=markdown,
    )


def _candidates(retriever: Retriever, hits, context: str | None):
    """(chunk row, hit, reason) in priority order; duplicates are dropped by the caller."""
    index = retriever.index
    rows_of_hit = {hit.slug: _chunk_rows(retriever, hit.slug) for hit in hits}
    row_of = {index.chunks[row].id: row for rows in rows_of_hit.values() for row in rows}

    def other_context(row: int) -> bool:  # with a context filter, other contexts' labels are left out
        chunk = index.chunks[row]
        return context is not None and chunk.role == "context-label" and chunk.context != context

    for hit in hits:
        for ev in hit.evidence:
            if ev.chunk_id in row_of and not other_context(row_of[ev.chunk_id]):
                yield row_of[ev.chunk_id], hit, "evidence"
        for row in rows_of_hit[hit.slug]:
            if index.chunks[row].role in _CORE:
                yield row, hit, "core"
    for hit in hits:
        rows = [r for r in rows_of_hit[hit.slug] if index.chunks[r].role not in _CORE]
        rows = [r for r in rows if index.chunks[r].role != "context-label" or (context is not None and index.chunks[r].context == context)]
        rank = {role: n for n, role in enumerate(_MORE)}
        for row in sorted(rows, key=lambda r: (rank.get(index.chunks[r].role, len(_MORE)), r)):
            yield row, hit, "more"


def _chunk_rows(retriever: Retriever, slug: str) -> list[int]:
    index = retriever.index
    return index.chunk_rows(index.slug_row[slug]).tolist()


def _header(query: str, version: str) -> str:
    shown = query if len(query) <= QUERY_ECHO_CHARS else query[: QUERY_ECHO_CHARS - 3] + "..."
    shown = " ".join(shown.split())
    return f"# Context for: {shown}\n\nPatterns from index {version}. Cite a passage by the id in brackets after its heading."


def _pattern_heading(hit: Hit) -> str:
    return f"## {hit.rank}. {hit.title} [{hit.slug}]"


def _passage_block(chunk: Chunk) -> str:
    return f"### {chunk.section} [{chunk.id}]\n\n{_body(chunk.text)}"


def _body(text: str) -> str:
    """A chunk's text without the `Title: Section.` line the chunker puts first for the model."""
    return text.split("\n", 1)[1] if "\n" in text else text
