"""The search-engine seam: what the retriever asks of wherever the vectors and BM25 indexes live.

The embedded engine (`rag.index.embedded`: FAISS + bm25s files in the build folder) is the default; a
networked engine implements the same methods. Rows are positions in the build's `patterns` and `chunks`
tuples, so everything above this seam (signals, fusion, evidence, faces) is engine-agnostic. Every search
takes a `Selection`: the filters as given (a networked engine turns them into its own expression) and the
same filters as boolean masks (the embedded engine applies them inside its scan); either way the filter
is applied before the cut, so k hits come back whenever k match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from rag.records.filters import Filters

LexicalField = Literal["keywords", "fulltext", "passages"]
LEXICAL_FIELDS: tuple[LexicalField, ...] = ("keywords", "fulltext", "passages")
# keywords: per pattern, title + aliases + vector keywords + primary tension (the author's search hints)
# fulltext: per pattern, the whole text;  passages: per chunk (lexical evidence)
PATTERN_FIELDS = frozenset({"keywords", "fulltext"})


@dataclass(frozen=True, slots=True)
class Selection:
    """The filter of one query: as given, and as masks over pattern rows and chunk rows (None: everything)."""

    filters: Filters
    patterns: np.ndarray | None = None
    chunks: np.ndarray | None = None

    @property
    def everything(self) -> bool:
        return self.patterns is None


EVERYTHING = Selection(Filters())


@dataclass(frozen=True, slots=True)
class Scored:
    """Rows best-first with their raw scores (cosine for vectors, BM25 for lexical fields)."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32

    @classmethod
    def empty(cls) -> Scored:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


class Engine(Protocol):
    kind: str

    def dense(self, vectors: np.ndarray, k: int, selection: Selection) -> list[Scored]:
        """Top-k chunk rows per query vector (one batched search for a (n, d) matrix)."""
        ...

    def lexical(self, field: LexicalField, tokens: Sequence[str], k: int, selection: Selection) -> Scored:
        """Top-k rows of a BM25 field (pattern rows for keywords/fulltext, chunk rows for passages)."""
        ...

    def passage_scores(self, tokens: Sequence[str], chunk_rows: np.ndarray) -> np.ndarray:
        """BM25 scores of the given chunk rows' passages (evidence for lexical matches)."""
        ...

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of chunk rows (for more-like-this)."""
        ...

    def health(self) -> dict:
        """{"engine": kind, "reachable": bool, ...}."""
        ...
