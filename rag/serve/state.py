"""The served state: one opened index with its retriever and graph, never mutated after load.

A reload builds a new State and swaps the reference, so a request that took the old one finishes on the old
one, and every response comes from exactly one index version. Concurrent searches may share encoder passes
through the state's micro-batcher (rag.serve.batching).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rag.config import MilvusSettings, RetrieverSettings
from rag.embedding.encoder import Encoder
from rag.errors import RagError
from rag.index.search_index import SearchIndex
from rag.records.results import Results
from rag.search.graph import Graph
from rag.search.query import PreparedQuery
from rag.search.retriever import Retriever
from rag.serve.batching import Admission, MicroBatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class State:
    """One served index version: index, retriever and graph, never mutated after load."""

    index: SearchIndex
    retriever: Retriever
    graph: Graph
    loaded_at: float
    sorted_slugs: tuple[str, ...] = ()  # for cheap "did you mean" suggestions
    batcher: MicroBatcher | None = None  # concurrent searches share encoder passes (None: each alone)
    admission: Admission | None = None  # a bound on searches held at once (None: unbounded)
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

    def with_admission(self, limit: int | None) -> State:
        """This state refusing searches past `limit` held at once (None or 0: unbounded); keeps an existing bound object."""
        if not limit:
            return replace(self, admission=None) if self.admission is not None else self
        if self.admission is not None and self.admission.limit == limit:
            return self
        return replace(self, admission=Admission(limit))

    @property
    def version(self) -> str:
        return self.index.version

    @classmethod
    def load(
        cls,
        index_dir: Path,
        embedder: Encoder,
        settings: RetrieverSettings | None = None,
        warm: bool = True,
        milvus: MilvusSettings | None = None,
    ) -> State:
        """Open and verify the index and check it was built by this model; with `warm`, load the model and
        the tokenizer now (a server), else on first use (`rag show` never loads the model). `milvus`
        overrides a Milvus index's URI and carries its credentials."""
        from rag.index.store import current_build

        current_build(Path(index_dir))  # a missing index fails before the model loads
        index = SearchIndex.open(Path(index_dir), expected_model=embedder.info.record, milvus=milvus)
        retriever = Retriever(index, embedder, settings)
        state = cls(index, retriever, Graph(index.patterns), time.time(), tuple(sorted(index.slug_row)), milvus=milvus)
        log.info(
            "serving index %s (%d patterns, %d chunks) from %s", state.version, len(index.patterns), len(index.chunks), index.build_dir
        )
        if warm:
            state.warm()
        return state

    def warm(self) -> None:
        """Load the model and the tokenizer (the first search would otherwise pay for it)."""
        from rag.chunking import model_token_counter

        self.retriever.embedder.encode_query("warm up")
        model_token_counter()

    def search(self, query: PreparedQuery) -> Results:
        """A prepared query's results, through the micro-batcher when there is one, within the admission bound."""
        if self.admission is None:
            return self._search(query)
        with self.admission:
            return self._search(query)

    def _search(self, query: PreparedQuery) -> Results:
        if self.batcher is not None:
            return self.batcher.submit((self.retriever, query))
        return self.retriever.run(query)


def run_batch(items: Sequence[tuple[Retriever, PreparedQuery]]) -> list[Results | RagError]:
    """The micro-batcher's call: each retriever (index version) answers its own queries in one batch."""
    out: list[Results | RagError | None] = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for i, (retriever, _) in enumerate(items):
        groups.setdefault(id(retriever), []).append(i)
    for members in groups.values():
        retriever = items[members[0]][0]
        for i, result in zip(members, retriever.run_many([items[i][1] for i in members])):
            out[i] = result
    return out  # type: ignore[return-value]
