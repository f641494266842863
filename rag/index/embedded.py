"""The embedded engine: FAISS vectors and bm25s indexes stored as files in the build folder.

Files (named in rag.index.store): vectors.npy (flat) or vectors.faiss, bm25-keywords/, bm25-patterns/ (full text), bm25-chunks/ (passages).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from rag.config import BuildSettings, LexicalSettings, MilvusSettings, VectorSettings
from rag.index.engine import EngineHealth, LexicalField, PatternField, Scored, Selection, top_k
from rag.index.lexical import LexicalIndex
from rag.index.store import BM25, LEGACY_FLAT, VECTORS
from rag.index.vectors import VectorIndex
from rag.records.chunk import Chunk
from rag.records.manifest import Manifest, MilvusRecord
from rag.records.pattern import Pattern


class EmbeddedEngine:
    kind = "embedded"

    def __init__(self, vectors: VectorIndex, lexical: dict[str, LexicalIndex]):
        self.vectors = vectors
        self.keywords = lexical["keywords"]
        self.fulltext = lexical["fulltext"]
        self.passages = lexical["passages"]
        self._fields = lexical
        self._postings = self.fulltext.postings

    # -- build and open ---------------------------------------------------------------------------
    @classmethod
    def build(cls, vectors: np.ndarray, documents: dict[str, list[list[str]]], vector_settings: VectorSettings, lexical: LexicalSettings) -> EmbeddedEngine:
        index = VectorIndex.build(vectors, vector_settings)
        return cls(index, {name: LexicalIndex.build(documents[name], lexical.k1, lexical.b) for name in BM25})

    def save(self, build_dir: Path) -> None:
        self.vectors.save(build_dir / VECTORS[self.vectors.settings.kind])
        for name, folder in BM25.items():
            self._fields[name].save(build_dir / folder)

    @classmethod
    def open(cls, build_dir: Path, vector_settings: VectorSettings) -> EmbeddedEngine:
        path = build_dir / VECTORS[vector_settings.kind]
        if not path.exists() and (build_dir / LEGACY_FLAT).exists():
            path = build_dir / LEGACY_FLAT
        vectors = VectorIndex.load(path, vector_settings)
        return cls(vectors, {name: LexicalIndex.load(build_dir / folder, mmap=True) for name, folder in BM25.items()})  # shared pages

    def sizes(self) -> dict[str, int]:
        return {"vectors": self.vectors.size, **{name: index.size for name, index in self._fields.items()}}

    # -- search -----------------------------------------------------------------------------------
    def dense(self, vectors: np.ndarray, k: int, selection: Selection) -> list[Scored]:
        found = self.vectors.search_batch(np.atleast_2d(vectors), k, selection.chunks)
        return [Scored(rows.astype(np.int64), scores.astype(np.float32)) for scores, rows in found]

    def lexical(self, field: LexicalField, tokens: Sequence[str], k: int, selection: Selection) -> Scored:
        mask = selection.chunks if field == "passages" else selection.patterns
        return top_k(self._fields[field].scores(tokens), k, mask)

    def lexical_scores(self, field: PatternField, tokens: Sequence[str], selection: Selection) -> np.ndarray:
        scores = self._fields[field].scores(tokens)
        return scores if selection.patterns is None else np.where(selection.patterns, scores, np.float32(0.0))

    def passage_scores(self, tokens: Sequence[str], chunk_rows: np.ndarray) -> np.ndarray:
        return self.passages.scores(tokens)[np.asarray(chunk_rows, dtype=np.int64)]

    def coverage(self, tokens: Sequence[str]) -> np.ndarray:
        return self._postings.coverage(tokens)

    def document_frequencies(self, tokens: Sequence[str]) -> np.ndarray:
        return self._postings.document_frequencies(tokens)

    def feedback_terms(self, rows: np.ndarray, m: int, exclude: Collection[str]) -> list[str]:
        return self._postings.feedback_terms(rows, m, exclude)

    def chunk_similarities(self, vectors: np.ndarray, chunk_rows: np.ndarray) -> np.ndarray:
        stored = self.vectors.reconstruct(np.asarray(chunk_rows, dtype=np.int64))
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim == 1:
            return (stored @ queries).astype(np.float32)
        return (queries @ stored.T).astype(np.float32)

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        return self.vectors.reconstruct(rows)

    def health(self) -> EngineHealth:
        return EngineHealth(self.kind, True, extra={"vector_index": self.vectors.settings.kind, "kernel": self.vectors.kernel})


class EmbeddedBuilder:
    """The builder seam (rag.index.engines) for files only: everything lives in the build folder."""

    kind = "embedded"
    record: MilvusRecord | None = None

    def __init__(self, engine: EmbeddedEngine):
        self.engine = engine

    @property
    def vectors(self) -> VectorSettings:
        return self.engine.vectors.settings

    def save(self, build_dir: Path) -> None:
        self.engine.save(build_dir)

    def start(self, index_dir: Path) -> None:
        pass

    def discard(self) -> None:
        pass

    def finish(self, index_dir: Path) -> None:
        pass


class EmbeddedBackend:
    kind = "embedded"

    def builder(self, settings: BuildSettings, patterns: Sequence[Pattern], chunks: Sequence[Chunk], vectors: np.ndarray,
                documents: dict[str, list[list[str]]], vector_settings: VectorSettings) -> EmbeddedBuilder:
        return EmbeddedBuilder(EmbeddedEngine.build(vectors, documents, vector_settings, settings.lexical))

    def still_served(self, settings: BuildSettings, manifest: Manifest) -> bool:
        return manifest.engine == self.kind

    def open(self, build_dir: Path, manifest: Manifest, milvus: MilvusSettings | None) -> EmbeddedEngine:
        return EmbeddedEngine.open(build_dir, manifest.vectors)


BACKEND = EmbeddedBackend()
