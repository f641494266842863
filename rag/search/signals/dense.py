"""Dense signal: cosine between the query vector and every chunk, aggregated to patterns."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rag.config import RetrieverSettings
from rag.index.engine import Scored
from rag.index.search_index import SearchIndex
from rag.search.signals.base import SignalQuery, SignalRun


class DenseSignal:
    name: ClassVar[str] = "dense"
    needs_vector: ClassVar[bool] = True

    def __init__(self, index: SearchIndex, settings: RetrieverSettings):
        self.index = index
        self.settings = settings
        self.role_weight = np.array([settings.role_weights.get(c.role, 1.0) for c in index.chunks], dtype=np.float32)

    def rank(self, query: SignalQuery) -> SignalRun:
        assert query.vector is not None, "the dense signal needs the query vector"
        found = self.index.engine.dense(query.vector[None, :], self.settings.dense_candidates, query.selection)[0]
        return self.from_chunks(found)

    def from_chunks(self, found: Scored) -> SignalRun:
        """The run of chunk hits already searched (the retriever batches searches of concurrent queries)."""
        chunks = Scored(found.rows, found.scores * self.role_weight[found.rows])
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
