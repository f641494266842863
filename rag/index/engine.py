"""The search-engine seam: everything the retriever, the learned fusion, the calibration and the faces ask of
wherever the vectors and BM25 indexes live.

The embedded engine (`rag.index.embedded`: FAISS + bm25s files in the build folder) is the default; the Milvus
engine (`rag.index.milvus.engine`) implements the same methods exactly, so the same ranking comes out of both.
Rows are positions in the build's `patterns` and `chunks` tuples, so everything above this seam (signals, fusion,
evidence, faces) is engine-agnostic. Every search takes a `Selection`: the filters as given (a networked engine
turns them into its own expression) and the same filters as boolean masks (the embedded engine applies them inside
its scan); either way the filter is applied before the cut, so k hits come back whenever k match.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from rag.records.filters import Filters

LexicalField = Literal["keywords", "fulltext", "passages"]
# keywords: per pattern, title + aliases + vector keywords + primary tension (the author's search hints)
# fulltext: per pattern, the whole text;  passages: per chunk (lexical evidence)
PatternField = Literal["keywords", "fulltext"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The filter of one query: as given, and as masks over pattern rows and chunk rows (None: everything)."""

    filters: Filters
    patterns: np.ndarray | None = None
    chunks: np.ndarray | None = None

    @property
    def everything(self) -> bool:
        return self.patterns is None


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


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """What an engine says of itself now: its kind, whether it answers, and why not."""

    engine: str
    reachable: bool
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # engine-specific facts (vector index, kernel, URI, collections)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine, "reachable": self.reachable, **self.extra}
        if self.detail is not None:
            out["error"] = self.detail
        return out


class Engine(Protocol):
    kind: str

    def sizes(self) -> dict[str, int]:
        """Rows per part: vectors, keywords, fulltext, passages (checked against the manifest when opened)."""
        ...

    def dense(self, vectors: np.ndarray, k: int, selection: Selection) -> list[Scored]:
        """Top-k chunk rows per query vector (one batched search for a (n, d) matrix)."""
        ...

    def lexical(self, field: LexicalField, tokens: Sequence[str], k: int, selection: Selection) -> Scored:
        """Top-k rows of a BM25 field (pattern rows for keywords/fulltext, chunk rows for passages)."""
        ...

    def lexical_scores(self, field: PatternField, tokens: Sequence[str], selection: Selection) -> np.ndarray:
        """BM25 of every pattern row of `field` (float32, 0 outside the selection): what `lexical` ranks before its cut,
        and what the learned fusion's lexical features read."""
        ...

    def passage_scores(self, tokens: Sequence[str], chunk_rows: np.ndarray) -> np.ndarray:
        """BM25 scores of the given chunk rows' passages (evidence for lexical matches)."""
        ...

    def coverage(self, tokens: Sequence[str]) -> np.ndarray:
        """Per pattern row: the idf-weighted share of the query tokens its full text contains, in [0, 1] (float32; an
        absolute lexical feature for the learned fusion and the calibration, unlike min-max normalized BM25)."""
        ...

    def document_frequencies(self, tokens: Sequence[str]) -> np.ndarray:
        """How many patterns' full texts hold each token (int64, in the order given)."""
        ...

    def feedback_terms(self, rows: np.ndarray, m: int, exclude: Collection[str]) -> list[str]:
        """The m tokens most typical of these patterns' full texts (pseudo-relevance feedback; rag.index.postings)."""
        ...

    def chunk_similarities(self, vectors: np.ndarray, chunk_rows: np.ndarray) -> np.ndarray:
        """Cosine of query vectors with each given chunk row (float32, in the order given): (n,) for one vector (d,),
        (m, n) for m vectors (m, d), computed in one pass."""
        ...

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of chunk rows (for more-like-this)."""
        ...

    def health(self) -> EngineHealth:
        ...


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None = None) -> Scored:
    """The k best rows with a positive score, restricted to `mask`; ties broken by row."""
    if mask is not None:
        scores = np.where(mask, scores, 0.0)
    depth = min(k, int((scores > 0).sum()))
    if depth == 0:
        return Scored.empty()
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.lexsort((top, -scores[top]))]
    return Scored(top.astype(np.int64), scores[top].astype(np.float32))
