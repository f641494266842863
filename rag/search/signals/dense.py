"""Dense signal: cosine between the query vector and every chunk, aggregated to patterns."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rag.config import RetrieverSettings
from rag.index.engine import Scored
from rag.index.search_index import SearchIndex
from rag.search.query import PreparedQuery
from rag.search.signals.base import SignalRun


class DenseSignal:
    name: ClassVar[str] = "dense"
    needs_vector: ClassVar[bool] = True

    def __init__(self, index: SearchIndex, settings: RetrieverSettings):
        self.index = index
        self.settings = settings
        roles, contexts = index.chunks.roles, index.chunks.contexts
        self.role_weight = np.array([settings.role_weights.get(role, 1.0) for role in roles], dtype=np.float32)
        self._label_context = np.array([(c or "") if role == "context-label" else "" for role, c in zip(roles, contexts)], dtype=object)
        self._reader_weights: dict[str, np.ndarray] = {}

    def rank(self, query: PreparedQuery) -> SignalRun:
        found = query.dense
        if found is None:
            assert query.vector is not None, "the dense signal needs the query vector"
            found = self.index.engine.dense(query.vector[None, :], self.settings.dense_candidates, query.selection)[0]
        return self.from_chunks(found, query.reader)

    def weights_for(self, reader: str | None) -> np.ndarray:
        """Per-chunk multipliers: section roles, and for a reader its own label up, other readers' labels down."""
        s = self.settings
        if reader is None or (s.reader_label_weight == 1.0 and s.other_label_weight == 1.0):
            return self.role_weight
        if reader not in self._reader_weights:
            labels = self._label_context != ""
            mine = self._label_context == reader
            w = self.role_weight.copy()
            w[labels & ~mine] *= s.other_label_weight
            w[mine] *= s.reader_label_weight
            self._reader_weights[reader] = w
        return self._reader_weights[reader]

    def from_chunks(self, found: Scored, reader: str | None = None) -> SignalRun:
        """The run of chunk hits already searched (the retriever batches searches of concurrent queries)."""
        chunks = Scored(found.rows, found.scores * self.weights_for(reader)[found.rows])
        return SignalRun.of(self.aggregate(chunks), chunks=chunks)

    def aggregate(self, chunks: Scored) -> Scored:
        """Pattern score = best chunk + `dense_support` x the sum of the next `dense_support_chunks` (config.py)."""
        found: dict[int, list[float]] = {}
        for row, score in zip(self.index.chunk_pattern[chunks.rows].tolist(), chunks.scores.tolist()):
            found.setdefault(row, []).append(score)
        support, extra = self.settings.dense_support, self.settings.dense_support_chunks
        best = {row: (s := sorted(v, reverse=True))[0] + support * sum(s[1 : 1 + extra]) for row, v in found.items()}
        items = sorted(best.items(), key=lambda kv: -kv[1])
        return Scored(np.array([r for r, _ in items], dtype=np.int64), np.array([v for _, v in items], dtype=np.float32))
