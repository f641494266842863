"""The signal seam: one unit per kind of evidence, each ranking patterns for a query under its filter.

A signal gets the `PreparedQuery` (rag.search.query: the text, its analyzed tokens, its vector when the signal
needs one, the `Selection` to stay within, and the BM25 arrays shared by every stage) and returns a `SignalRun`:
pattern rows best-first with raw scores, plus what the evidence stage may show (the chunks that matched, the
name that matched). Signals never see each other; the retriever fuses their runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from rag.config import RetrieverSettings
from rag.index.engine import Scored
from rag.index.search_index import SearchIndex
from rag.search.query import PreparedQuery


@dataclass(frozen=True, slots=True)
class SignalRun:
    """Pattern rows best-first and their raw scores; `chunks` are the matching chunk rows (dense), `names`
    the title or alias matched per pattern row (names)."""

    rows: np.ndarray
    scores: np.ndarray
    chunks: Scored | None = None
    names: Mapping[int, str] = field(default_factory=dict)
    pinnable: frozenset[int] = frozenset()  # rows whose match may pin them first (names only)

    @classmethod
    def of(cls, scored: Scored, **extra) -> SignalRun:
        return cls(scored.rows, scored.scores, **extra)

    def rank_of(self, row: int) -> int | None:
        """1-based rank of a pattern row in this run, None when absent."""
        where = np.flatnonzero(self.rows == row)
        return int(where[0]) + 1 if len(where) else None


class Signal(Protocol):
    name: ClassVar[str]
    needs_vector: ClassVar[bool]

    def __init__(self, index: SearchIndex, settings: RetrieverSettings) -> None: ...

    def rank(self, query: PreparedQuery) -> SignalRun: ...
