"""Names signal: the query matched as a known name (title or alias), exactly or by trigram similarity."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rag.config import RetrieverSettings
from rag.index.search_index import SearchIndex
from rag.search.names import NameIndex
from rag.search.query import PreparedQuery
from rag.search.signals.base import SignalRun


class NamesSignal:
    name: ClassVar[str] = "names"
    needs_vector: ClassVar[bool] = False

    def __init__(self, index: SearchIndex, settings: RetrieverSettings):
        self.settings = settings
        self.names = NameIndex(index.patterns, aliases=settings.name_aliases)

    def rank(self, query: PreparedQuery) -> SignalRun:
        matches = self.names.match(query.text, self.settings.name_min, query.selection.patterns)
        return SignalRun(
            np.array([m.row for m in matches], dtype=np.int64),
            np.array([m.similarity for m in matches], dtype=np.float32),
            names={m.row: m.name for m in matches},
            pinnable=frozenset(m.row for m in matches if m.pinnable and m.similarity >= self.settings.name_pin),
        )
