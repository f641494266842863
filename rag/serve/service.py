"""What every face serves (HTTP API, MCP tools, CLI): one loaded index and the operations over it.

`State` bundles an opened index with its retriever and graph. It is immutable: a reload builds a new
State and swaps the reference, so a request that took the old one finishes on the old one, and every
response comes from exactly one index version. The operations validate user input first (slugs,
text) and raise `QueryError` (bad input, the field named), `UnknownFilterValue` (the valid values
listed) or `PatternNotFound`; no input ever becomes a filesystem path.
"""

from __future__ import annotations

import bisect
import difflib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rag.search.browse import PatternPage, browse
from rag.search.context import ContextPack, build_context
from rag.embedding.encoder import Encoder
from rag.search.filters import Facets, Filters, normalize
from rag.search.graph import Graph, RelatedPattern, SimilarPattern, similar
from rag.load.library import SLUG_RE
from rag.records.pattern import Pattern
from rag.records.results import Results
from rag.errors import PatternNotFound, QueryError, RebuildError
from rag.search.retriever import Retriever, SearchRequest
from rag.serve.batching import MicroBatcher
from rag.config import BuildSettings, ChunkerSettings, LexicalSettings, MilvusSettings, RetrieverSettings, VectorSettings
from rag.index.search_index import SearchIndex

log = logging.getLogger(__name__)

MAX_SIMILAR = 50
MAX_LIST = 200  # patterns per page of a listing
SLUG_RULE = "a slug is 1-200 lowercase letters, digits, '-', '.' or '_', starting with a letter or digit (not a path)"


@dataclass(frozen=True)
class State:
    """One served index version: index, retriever and graph, never mutated after load."""

    index: SearchIndex
    retriever: Retriever
    graph: Graph
    loaded_at: float
    sorted_slugs: tuple[str, ...] = ()  # for cheap "did you mean" suggestions
    batcher: MicroBatcher | None = None  # concurrent searches share encoder passes (None: each alone)
    milvus: MilvusSettings | None = None  # a Milvus index's URI override and credentials (kept for reloads)

    def with_batching(self, window_ms: float, max_batch: int) -> State:
        """This state with micro-batched searches (max_batch 1: none); a state that batches already is
        returned as it is. A batcher serves whatever state submits to it: each request carries its own
        retriever, so a state replaced with `dataclasses.replace` (a new index) still answers from its own."""
        if max_batch <= 1:
            return replace(self, batcher=None) if self.batcher is not None else self
        if self.batcher is not None:
            return self
        return replace(self, batcher=MicroBatcher(run_batch, window_ms / 1000.0, max_batch))

    @property
    def version(self) -> str:
        return self.index.version

    @classmethod
    def load(cls, index_dir: Path, embedder: Encoder, settings: RetrieverSettings | None = None, warm: bool = True, milvus: MilvusSettings | None = None) -> State:
        """Open and verify the index and check it was built by this model; with `warm`, load the model and
        the tokenizer now (a server), else on first use (`rag show` never loads the model). `milvus`
        overrides a Milvus index's URI and carries its credentials."""
        from rag.index.store import current_build

        current_build(Path(index_dir))  # a missing index fails before the model loads
        index = SearchIndex.open(Path(index_dir), expected_model=embedder.info.record, milvus=milvus)
        retriever = Retriever(index, embedder, settings)
        state = cls(index, retriever, Graph(index.patterns), time.time(), tuple(sorted(index.slug_row)), milvus=milvus)
        log.info("serving index %s (%d patterns, %d chunks) from %s", state.version, len(index.patterns), len(index.chunks), index.build_dir)
        if warm:
            state.warm()
        return state

    def warm(self) -> None:
        """Load the model and the tokenizer (the first search would otherwise pay for it)."""
        from rag.chunking import model_token_counter

        self.retriever.embedder.encode_query("warm up")
        model_token_counter()


# -- input checks ---------------------------------------------------------------------------------
def check_text(field: str, value: str | None) -> str | None:
    """Reject text that cannot be encoded (lone surrogates) before it reaches the tokenizers."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(field, f"{field} contains invalid Unicode (a lone surrogate); send UTF-8 text") from None
    return value


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


def check_filters(state: State, filters: Filters) -> Filters:
    for field in ("domain", "context", "status"):
        check_text(field, getattr(filters, field))
    return normalize(filters, state.retriever.facets)


# -- operations -----------------------------------------------------------------------------------
def check_offset(offset: int, limit: int | None = None) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or (limit is not None and offset >= limit):
        bound = f"from 0 to {limit - 1}" if limit is not None else "0 or more"
        raise QueryError("offset", f"offset must be a whole number {bound}, got {offset}")
    return offset


def search(state: State, query: str, k: int = 10, filters: Filters = Filters(), group_duplicates: bool = False, offset: int = 0, reader: str | None = None) -> Results:
    """The hits ranked offset+1 to offset+k; `reader` ranks and labels them for that context without
    filtering by it. Paging is done here, not in the retriever: it is asked for k + offset hits and the
    first `offset` are dropped (ranks stay absolute), so k + offset is capped by max_k. Concurrent calls
    share encoder passes through the state's micro-batcher."""
    check_text("query", query)
    check_text("reader", reader)
    max_k = state.retriever.settings.max_k
    if check_offset(offset, max_k) and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k - offset):
        raise QueryError("k", f"k must be between 1 and {max_k - offset} with offset {offset} (offset + k is at most {max_k}), got {k}")
    filters = check_filters(state, filters)
    if state.batcher is not None:
        results = state.batcher.submit((state.retriever, SearchRequest(query, k + offset, filters, group_duplicates, reader)))
    else:
        results = state.retriever.search(query, k + offset, filters, group_duplicates, reader)
    return results if not offset else replace(results, k=k, hits=results.hits[offset:])


def run_batch(items: list[tuple[Retriever, SearchRequest]]) -> list:
    """The micro-batcher's call: each retriever (index version) answers its own requests in one batch."""
    out: list = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for i, (retriever, _) in enumerate(items):
        groups.setdefault(id(retriever), []).append(i)
    for members in groups.values():
        retriever = items[members[0]][0]
        for i, result in zip(members, retriever.search_many([items[i][1] for i in members])):
            out[i] = result
    return out


def list_patterns(state: State, filters: Filters = Filters(), limit: int = 20, offset: int = 0) -> PatternPage:
    """A page of the patterns passing `filters`, in title order, with the total count."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise QueryError("limit", f"limit must be between 1 and {MAX_LIST}, got {limit}")
    check_offset(offset)
    filters = check_filters(state, filters)
    return browse(state.index.patterns, state.retriever.masks.mask(filters), filters, limit, offset)


def pattern(state: State, slug: str, context: str | None = None) -> tuple[Pattern, str | None, str | None]:
    """The pattern, and (when `context` is given) that context's name and label (None if it has none)."""
    found = check_slug(state, slug)
    context = check_filters(state, Filters(context=context)).context
    return found, context, (found.context_label(context) if context else None)


def related(state: State, slug: str) -> tuple[Pattern, tuple[RelatedPattern, ...]]:
    found = check_slug(state, slug)
    return found, state.graph.related(found.slug)


def more_like(state: State, slug: str, k: int = 10, filters: Filters = Filters()) -> tuple[Pattern, tuple[SimilarPattern, ...]]:
    found = check_slug(state, slug)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SIMILAR:
        raise QueryError("k", f"k must be between 1 and {MAX_SIMILAR}, got {k}")
    mask = state.retriever.masks.mask(check_filters(state, filters))
    return found, similar(state.index, found.slug, k, mask, state.retriever.settings.dense_candidates)


def facets(state: State) -> Facets:
    return state.retriever.facets


def context_pack(state: State, query: str, budget_tokens: int = 2000, filters: Filters = Filters(), patterns: int = 5) -> ContextPack:
    check_text("query", query)
    return build_context(state.retriever, query, budget_tokens, check_filters(state, filters), patterns)


# -- reload and reindex (the admin operations) ---------------------------------------------------
def reload(state: State, index_dir: Path) -> State:
    """The state of `index_dir`'s `current` build: `state` itself when that is already served, else freshly loaded."""
    from rag.index.store import current_build

    if current_build(Path(index_dir)).name == state.version:
        return state
    fresh = State.load(index_dir, state.retriever.embedder, state.retriever.settings, milvus=state.milvus)
    if state.batcher is not None:  # the new version batches as the old one did
        return fresh.with_batching(state.batcher.window_s * 1000.0, state.batcher.max_batch)
    return fresh


def rebuild(state: State, index_dir: Path, library: Path | None = None, cache_dir: Path | None = None):
    """Rebuild `index_dir` from `library` (default: the library the served build was made from), with the
    served build's chunker, vector index kind and BM25 parameters, then open the result.

    Returns (BuildSummary, State); the caller swaps the state in. Nothing served changes here: on any
    error (RebuildError, an IndexError_ such as BuildLocked) the previous state stays the one to serve.
    """
    from rag.index.build import build_index

    manifest = state.index.manifest
    source = library or manifest.library
    if not source or not Path(source).is_dir():
        raise RebuildError(f"pattern library folder not found: {source or '(none configured)'}; set RAG_LIBRARY to the folder to index")
    vectors = {**manifest.vectors, "nlist": 0}  # ivf: size the lists for the new chunk count
    settings = BuildSettings(
        library=Path(source),
        index_dir=Path(index_dir),
        cache_dir=cache_dir,
        chunker=ChunkerSettings.from_dict({**manifest.chunker, "version": ChunkerSettings().version}),  # this code's chunker
        vectors=VectorSettings(**vectors),
        lexical=LexicalSettings(**manifest.lexical),
        engine="milvus" if manifest.engine == "milvus" else "embedded",
        milvus=_build_milvus(state, manifest),
    )
    summary = build_index(settings, state.retriever.embedder)
    return summary, reload(state, index_dir)


def _build_milvus(state: State, manifest) -> MilvusSettings | None:
    """A reindex of a Milvus index writes to the server it was built on (or the configured one), same prefix."""
    if manifest.engine != "milvus" or manifest.milvus is None:
        return None
    return (state.milvus or MilvusSettings()).at(manifest.milvus.uri).with_(prefix=manifest.milvus.prefix)


def health(state: State) -> dict:
    """The engine's own report: which engine, and whether it is reachable now."""
    return state.index.engine.health()


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
        "vectors": m.vectors,
        "chunker": m.chunker,
        "fusion": state.retriever.settings.fusion,
        "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.loaded_at)),
    }
