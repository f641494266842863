"""The embedded engine: FAISS vectors and bm25s indexes stored as files in the build folder.

Files: vectors.faiss, bm25-keywords/, bm25-patterns/ (full text), bm25-chunks/ (passages).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.config import LexicalSettings, VectorSettings
from rag.index.engine import LexicalField, Scored, Selection
from rag.index.lexical import LexicalIndex
from rag.index.vectors import VectorIndex

FILES = {"keywords": "bm25-keywords", "fulltext": "bm25-patterns", "passages": "bm25-chunks"}
VECTORS = "vectors.faiss"


class EmbeddedEngine:
    kind = "embedded"

    def __init__(self, vectors: VectorIndex, lexical: dict[str, LexicalIndex]):
        self.vectors = vectors
        self.keywords = lexical["keywords"]
        self.fulltext = lexical["fulltext"]
        self.passages = lexical["passages"]
        self._fields = lexical
        self._last_passages: tuple[tuple[str, ...], np.ndarray] | None = None
        self._lock = threading.Lock()

    # -- build and open ---------------------------------------------------------------------------
    @classmethod
    def build(cls, vectors: np.ndarray, documents: dict[str, list[list[str]]], vector_settings: VectorSettings, lexical: LexicalSettings) -> EmbeddedEngine:
        index = VectorIndex.build(vectors, vector_settings)
        return cls(index, {name: LexicalIndex.build(documents[name], lexical.k1, lexical.b) for name in FILES})

    def save(self, build_dir: Path) -> None:
        self.vectors.save(build_dir / VECTORS)
        for name, folder in FILES.items():
            self._fields[name].save(build_dir / folder)

    @classmethod
    def open(cls, build_dir: Path, vector_settings: VectorSettings) -> EmbeddedEngine:
        vectors = VectorIndex.load(build_dir / VECTORS, vector_settings)
        return cls(vectors, {name: LexicalIndex.load(build_dir / folder) for name, folder in FILES.items()})

    def sizes(self) -> dict[str, int]:
        return {"vectors": self.vectors.size, **{name: index.size for name, index in self._fields.items()}}

    # -- search -----------------------------------------------------------------------------------
    def dense(self, vectors: np.ndarray, k: int, selection: Selection) -> list[Scored]:
        found = self.vectors.search_batch(np.atleast_2d(vectors), k, selection.chunks)
        return [Scored(rows.astype(np.int64), scores.astype(np.float32)) for scores, rows in found]

    def lexical(self, field: LexicalField, tokens: Sequence[str], k: int, selection: Selection) -> Scored:
        return top_k(self.lexical_scores(field, tokens, selection), k, None)

    def lexical_scores(self, field: LexicalField, tokens: Sequence[str], selection: Selection) -> np.ndarray:
        """BM25 of every row of `field` (float32), 0 outside the selection: what `lexical` ranks, before the cut."""
        scores = self._fields[field].scores(tokens)
        mask = selection.chunks if field == "passages" else selection.patterns
        return scores if mask is None else np.where(mask, scores, np.float32(0.0))

    def passage_scores(self, tokens: Sequence[str], chunk_rows: np.ndarray) -> np.ndarray:
        key = tuple(tokens)
        with self._lock:
            last = self._last_passages
        if last is None or last[0] != key:  # one full scoring per query, shared by its hits
            last = (key, self.passages.scores(tokens))
            with self._lock:
                self._last_passages = last
        return last[1][chunk_rows]

    def coverage(self, field: LexicalField, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        return self._fields[field].coverage(tokens, rows)

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors.reconstruct(rows)

    def health(self) -> dict:
        return {"engine": self.kind, "reachable": True, "vector_index": self.vectors.settings.kind, "kernel": self.vectors.kernel}


def top_k(scores: np.ndarray, k: int, mask: np.ndarray | None) -> Scored:
    """The k best rows with a positive score, restricted to `mask`; ties broken by row."""
    if mask is not None:
        scores = np.where(mask, scores, 0.0)
    depth = min(k, int((scores > 0).sum()))
    if depth == 0:
        return Scored.empty()
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.lexsort((top, -scores[top]))]
    return Scored(top.astype(np.int64), scores[top].astype(np.float32))
