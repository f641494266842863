"""What every face serves (HTTP API, MCP tools, CLI, the Python API): the operations over one served `State`.

Each operation checks its own input once and raises `QueryError` (bad input, the field named),
`UnknownFilterValue` (the valid values listed) or `PatternNotFound`; a search request is checked by
`Retriever.prepare`, the one check of a search. No input ever becomes a filesystem path.
"""

from __future__ import annotations

import bisect
import difflib
import time

from rag.errors import PatternNotFound, QueryError
from rag.load.library import SLUG_RE
from rag.records.filters import Filters
from rag.records.pattern import Pattern
from rag.records.request import SearchRequest
from rag.records.results import Results
from rag.search.browse import PatternPage, browse
from rag.search.context import ContextPack, build_context
from rag.search.filters import Facets
from rag.search.graph import RelatedPattern, SimilarPattern, similar
from rag.serve.state import State

MAX_SIMILAR = 50
MAX_LIST = 200  # patterns per page of a listing
SLUG_RULE = "a slug is 1-200 lowercase letters, digits, '-', '.' or '_', starting with a letter or digit (not a path)"


# -- input checks ---------------------------------------------------------------------------------
def check_slug(state: State, slug: str) -> Pattern:
    """The pattern named by `slug`; a malformed slug (a path, say) is refused before any lookup."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        shown = slug if isinstance(slug, str) and len(slug) <= 80 else f"{str(slug)[:77]}..."
        raise QueryError("slug", f"invalid slug {shown!r}: {SLUG_RULE}")
    pattern = state.index.pattern(slug)
    if pattern is None:
        raise PatternNotFound(slug, _suggest(state.sorted_slugs, slug))
    return pattern


def _suggest(slugs: tuple[str, ...], slug: str, prefix: int = 3, pool: int = 500) -> list[str]:
    """Close slugs sharing the first `prefix` characters (bounded work, whatever the library size)."""
    start = bisect.bisect_left(slugs, slug[:prefix])
    end = bisect.bisect_left(slugs, slug[:prefix] + "\uffff", start, min(len(slugs), start + pool))
    return difflib.get_close_matches(slug, slugs[start:end], n=3, cutoff=0.6)


def check_offset(offset: int, limit: int | None = None) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or (limit is not None and offset >= limit):
        bound = f"from 0 to {limit - 1}" if limit is not None else "0 or more"
        raise QueryError("offset", f"offset must be a whole number {bound}, got {offset}")
    return offset


# -- operations -----------------------------------------------------------------------------------
def search(state: State, request: SearchRequest) -> Results:
    """The hits ranked offset+1 to offset+k; the request's `reader` ranks and labels them for that context without
    filtering by it. Concurrent calls share encoder passes through the state's micro-batcher."""
    return state.search(state.retriever.prepare(request))


def list_patterns(state: State, filters: Filters = Filters(), limit: int = 20, offset: int = 0) -> PatternPage:
    """A page of the patterns passing `filters`, in title order, with the total count."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise QueryError("limit", f"limit must be between 1 and {MAX_LIST}, got {limit}")
    check_offset(offset)
    filters = state.retriever.normalize_filters(filters)
    return browse(state.index.patterns, state.retriever.masks.mask(filters), filters, limit, offset)


def pattern(state: State, slug: str, context: str | None = None) -> tuple[Pattern, str | None, str | None]:
    """The pattern, and (when `context` is given) that context's name and label (None if it has none)."""
    found = check_slug(state, slug)
    context = state.retriever.normalize_filters(Filters(context=context)).context
    return found, context, (found.context_label(context) if context else None)


def related(state: State, slug: str) -> tuple[Pattern, tuple[RelatedPattern, ...]]:
    found = check_slug(state, slug)
    return found, state.graph.related(found.slug)


def more_like(state: State, slug: str, k: int = 10, filters: Filters = Filters()) -> tuple[Pattern, tuple[SimilarPattern, ...]]:
    found = check_slug(state, slug)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SIMILAR:
        raise QueryError("k", f"k must be between 1 and {MAX_SIMILAR}, got {k}")
    mask = state.retriever.masks.mask(state.retriever.normalize_filters(filters))
    return found, similar(state.index, found.slug, k, mask, state.retriever.settings.dense_candidates)


def facets(state: State) -> Facets:
    return state.retriever.facets


def context_pack(state: State, query: str, budget_tokens: int = 2000, filters: Filters = Filters(), patterns: int = 5) -> ContextPack:
    """The search inside is checked by `Retriever.prepare`, like every search."""
    return build_context(state.retriever, query, budget_tokens, filters, patterns)


def health(state: State) -> dict:
    """The engine's own report: which engine, and whether it is reachable now."""
    return state.index.engine.health().to_dict()


def stats(state: State) -> dict:
    m = state.index.manifest
    counts = {**m.counts.to_dict(), "edges": state.graph.edges}
    return {
        "index_version": state.version,
        "built_at": m.built_at,
        "format_version": m.format_version,
        "package_version": m.package_version,
        "engine": m.engine,
        "model": m.model.to_dict(),
        "device": m.device,
        "counts": counts,
        "vectors": m.vectors.to_dict(),
        "chunker": m.chunker.to_dict(),
        "fusion": state.retriever.settings.fusion,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.loaded_at)),
    }
