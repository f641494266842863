"""An index opened in process (`rag.open_index`): the operations every face serves (`rag.serve.service`) over one
`State`, answering the records the HTTP API sends (`explain=False` leaves out what only an explained search carries).

The index is opened and verified at once; the model loads on the first search (or at once with `warm`), so
reading patterns, relationships and facets never loads it. An `Index` serves one index version, and may be
shared between threads; open the folder again to serve a newer build.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rag.api.answers import PatternAnswer, RelatedAnswer, SimilarAnswer
from rag.api.encoder import index_encoder
from rag.api.library import FiltersLike, Library, as_filters
from rag.config import DeviceKind, MilvusSettings, QueryEncoderKind
from rag.embedding.encoder import Encoder
from rag.records.request import SearchRequest
from rag.records.results import Results
from rag.search.browse import PatternPage
from rag.search.context import ContextPack
from rag.search.filters import Facets
from rag.serve import service
from rag.serve.state import State


def open_index(
    index_dir: str | Path,
    *,
    encoder: Encoder | None = None,
    device: DeviceKind = "auto",
    query_encoder: QueryEncoderKind = "auto",
    milvus: MilvusSettings | None = None,
    warm: bool = False,
) -> Index:
    """Open the index `rag index` built in `index_dir` (the folder holding `current`).

    Queries are encoded by the model the index was built with (an adapted one's folder, else the base model):
    the numpy forward pass on the CPU unless `device` is "cuda" (or "auto" with a CUDA build of torch) or
    `query_encoder` is "torch"; `encoder` replaces that choice (one already loaded, say). `milvus` overrides a
    Milvus index's URI and carries its credentials. `warm` loads the model now rather than on the first search.
    Raises IndexNotFound, IndexCorrupt or IndexIncompatible (each an `IndexError_`) saying what to do."""
    embedder = encoder if encoder is not None else index_encoder(Path(index_dir), device, query_encoder)
    return Index(State.load(Path(index_dir), embedder, warm=warm, milvus=milvus))


class Index(Library):
    """A pattern library opened in process (`rag.open_index`); each method is documented on `Library`."""

    def __init__(self, state: State):
        self._state = state

    @property
    def index_version(self) -> str:
        """The build this index serves (every answer names it too)."""
        return self._state.version

    def __repr__(self) -> str:
        return f"Index({str(self._state.index.build_dir)!r}, version={self.index_version!r})"

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        offset: int = 0,
        filters: FiltersLike = None,
        group_duplicates: bool = False,
        reader: str | None = None,
        explain: bool = False,
    ) -> Results:
        results = service.search(self._state, SearchRequest(query, k, offset, as_filters(filters), group_duplicates, reader))
        if explain:
            return results
        return replace(results, fusion={}, timings_ms={}, hits=tuple(replace(h, retrievers={}) for h in results.hits))

    def pattern(self, slug: str, context: str | None = None) -> PatternAnswer:
        found, name, label = service.pattern(self._state, slug, context)
        whole = replace(found, sections=tuple(found.sections))  # an opened index reads sections from disk on demand
        return PatternAnswer(whole, name, label, self.index_version)

    def related(self, slug: str) -> RelatedAnswer:
        found, edges = service.related(self._state, slug)
        return RelatedAnswer(found.slug, found.title, edges, self._state.graph.dangling_of(found.slug), self.index_version)

    def similar(self, slug: str, k: int = 10, *, filters: FiltersLike = None) -> SimilarAnswer:
        found, nearest = service.more_like(self._state, slug, k, as_filters(filters))
        return SimilarAnswer(found.slug, found.title, nearest, self.index_version)

    def facets(self) -> Facets:
        return service.facets(self._state)

    def list_patterns(self, filters: FiltersLike = None, limit: int = 20, offset: int = 0) -> PatternPage:
        return service.list_patterns(self._state, as_filters(filters), limit, offset)

    def context_pack(self, query: str, budget_tokens: int = 2000, *, filters: FiltersLike = None, patterns: int = 5) -> ContextPack:
        return service.context_pack(self._state, query, budget_tokens, as_filters(filters), patterns)
