"""The Milvus engine behind the engine seam: one Milvus request per signal, the filter as a pre-filter expression.

Rows are the build's own row numbers (primary keys), so hits map to the local `patterns.jsonl` and
`chunks.jsonl` of the same build, and a served `State` reads only the collections its manifest names: every
response comes from one build. BM25 scores are divided by k1 + 1, which makes them bm25s's (Milvus keeps the
(k1 + 1) numerator that bm25s's Lucene variant drops), so raw scores and explanations agree across engines.
Each result is re-checked against the selection's masks (a row outside them is dropped), and ties are
ordered by row, as the embedded engine orders them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from rag.config import DEFAULT_MILVUS_URI, BuildSettings, LexicalSettings, MilvusSettings, VectorSettings
from rag.errors import EngineUnavailable, IndexCorrupt
from rag.index.engine import EngineHealth, LexicalField, PatternField, Scored, Selection
from rag.index.milvus.build import MilvusBuild, still_served
from rag.index.milvus.client import connect, gate, guarded, redact
from rag.index.milvus.expressions import rows_expression, selection_expression
from rag.index.postings import Postings
from rag.index.store import POSTINGS
from rag.records.chunk import Chunk
from rag.records.manifest import Manifest, MilvusRecord
from rag.records.pattern import Pattern

log = logging.getLogger(__name__)

MAX_LIMIT = 16384  # Milvus's largest topk
SPARSE = {"keywords": "keywords_sparse", "fulltext": "fulltext_sparse", "passages": "passages_sparse"}


class MilvusEngine:
    kind = "milvus"

    def __init__(self, record: MilvusRecord, settings: MilvusSettings, lexical: LexicalSettings, vectors: VectorSettings, sizes: dict[str, int], postings: Postings):
        self.record = record
        self.settings = settings
        self.scale = 1.0 / (lexical.k1 + 1.0)
        self.vector_settings = vectors
        self._sizes = sizes
        self._postings = postings  # the full-text corpus's postings, kept locally: coverage without a round trip

    @classmethod
    def open(cls, record: MilvusRecord, settings: MilvusSettings | None, lexical: LexicalSettings, vectors: VectorSettings, counts: dict[str, int], postings: Postings) -> MilvusEngine:
        """Open the build's collections. Unreachable now is not fatal (requests get 503 until it returns);
        reachable with a collection missing or of another size is IndexCorrupt."""
        settings = (settings or MilvusSettings()).at(record.uri)
        engine = cls(record, settings, lexical, vectors, dict(counts), postings)
        try:
            engine._sizes = engine.remote_sizes()
        except EngineUnavailable:
            log.warning("Milvus at %s is unreachable; serving will answer 503 until it is back", redact(settings.uri))
        return engine

    @property
    def client(self):
        return connect(self.settings)

    def _call(self, collection: str, method: str, *args, **kwargs):
        """One Milvus call, through the server's gate (bounded concurrency, breaker) and the error mapping."""
        client = self.client
        call = getattr(client, method)
        return gate(self.settings).run(
            self.settings.uri, lambda: guarded(self.settings.uri, collection, call, *args, timeout=self.settings.timeout_s, **kwargs)
        )

    def remote_sizes(self) -> dict[str, int]:
        out = {}
        for part, name in (("chunks", self.record.chunks), ("patterns", self.record.patterns)):
            if not self._call(name, "has_collection", name):
                raise IndexCorrupt(f"Milvus collection {name} is missing on {redact(self.settings.uri)}; run `rag index LIBRARY --engine milvus --rebuild`")
            out[part] = int(self._call(name, "query", name, filter="", output_fields=["count(*)"])[0]["count(*)"])
        return {"vectors": out["chunks"], "keywords": out["patterns"], "fulltext": out["patterns"], "passages": out["chunks"]}

    def sizes(self) -> dict[str, int]:
        """Row counts per field: measured on the server at open, or the build's counts while it is unreachable."""
        return dict(self._sizes)

    # -- search -----------------------------------------------------------------------------------
    def dense(self, vectors: np.ndarray, k: int, selection: Selection) -> list[Scored]:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if k <= 0 or self._sizes.get("vectors", 0) == 0:
            return [Scored.empty() for _ in vectors]
        params = {"metric_type": "COSINE", "params": {"nprobe": self.vector_settings.nprobe} if self.record.index_type == "IVF_FLAT" else {}}
        found = self._call(self.record.chunks, "search", self.record.chunks, data=vectors.tolist(), anns_field="dense",
                           limit=min(k, MAX_LIMIT), filter=selection_expression(selection), search_params=params, output_fields=[])
        return [_scored(hits, 1.0, selection.chunks) for hits in found]

    def lexical(self, field: LexicalField, tokens: Sequence[str], k: int, selection: Selection) -> Scored:
        if not tokens or k <= 0:
            return Scored.empty()
        name = self.record.chunks if field == "passages" else self.record.patterns
        found = self._call(name, "search", name, data=[" ".join(tokens)], anns_field=SPARSE[field], limit=min(k, MAX_LIMIT),
                           filter=selection_expression(selection), search_params={"metric_type": "BM25"}, output_fields=[])
        return _scored(found[0], self.scale, selection.chunks if field == "passages" else selection.patterns)

    def lexical_scores(self, field: PatternField, tokens: Sequence[str], selection: Selection) -> np.ndarray:
        n = self._sizes.get(field, 0)
        out = np.zeros(n, dtype=np.float32)
        found = self.lexical(field, tokens, n, selection)  # every pattern that holds a query token (n <= MAX_LIMIT)
        out[found.rows] = found.scores
        return out

    def passage_scores(self, tokens: Sequence[str], chunk_rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(chunk_rows, dtype=np.int64)
        if not tokens or not len(rows):
            return np.zeros(len(rows), dtype=np.float32)
        score = self._within(SPARSE["passages"], [" ".join(tokens)], rows, "BM25")[0]
        return np.array([score.get(int(r), 0.0) * self.scale for r in rows], dtype=np.float32)

    def coverage(self, tokens: Sequence[str]) -> np.ndarray:
        return self._postings.coverage(tokens)

    def document_frequencies(self, tokens: Sequence[str]) -> np.ndarray:
        return self._postings.document_frequencies(tokens)

    def feedback_terms(self, rows: np.ndarray, m: int, exclude: Collection[str]) -> list[str]:
        return self._postings.feedback_terms(rows, m, exclude)

    def chunk_similarities(self, vectors: np.ndarray, chunk_rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(chunk_rows, dtype=np.int64)
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        out = np.zeros((len(queries), len(rows)), dtype=np.float32)
        if len(rows):
            scores = self._within("dense", queries.tolist(), rows, "COSINE")
            for i, score in enumerate(scores):
                missing = [int(r) for r in rows if int(r) not in score]
                if missing:
                    raise IndexCorrupt(
                        f"Milvus collection {self.record.chunks} lacks chunk rows {missing[:5]}; run `rag index LIBRARY --engine milvus --rebuild`"
                    )
                out[i] = [score[int(r)] for r in rows]
        return out[0] if np.asarray(vectors).ndim == 1 else out

    def _within(self, anns_field: str, data: list, rows: np.ndarray, metric: str) -> list[dict[int, float]]:
        """One search of the chunk collection restricted to `rows` (every one of them when its score is defined), for
        each query of `data`: row -> raw score. Exact, whatever the vector index: a scan of the few rows the filter keeps."""
        unique = np.unique(rows)
        out: list[dict[int, float]] = [{} for _ in data]
        for start in range(0, len(unique), MAX_LIMIT):
            part = unique[start : start + MAX_LIMIT]
            keep = np.zeros(max(self._sizes.get("passages", 0), int(part.max()) + 1), dtype=bool)
            keep[part] = True
            params = {"metric_type": metric, "params": {}}
            if metric != "BM25" and self.record.index_type == "IVF_FLAT":
                params["params"] = {"nprobe": self.vector_settings.nlist or 128}  # every list: exact over the kept rows
            found = self._call(self.record.chunks, "search", self.record.chunks, data=data, anns_field=anns_field, limit=len(part),
                               filter=rows_expression("row", keep), search_params=params, output_fields=[])
            for scores, hits in zip(out, found):
                scores.update((int(h["id"]), float(h["distance"])) for h in hits)
        return out

    def chunk_vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, 0), dtype=np.float32)
        found = self._call(self.record.chunks, "query", self.record.chunks, filter=f"row in [{', '.join(map(str, rows.tolist()))}]", output_fields=["row", "dense"])
        by_row = {int(r["row"]): r["dense"] for r in found}
        missing = [int(r) for r in rows if int(r) not in by_row]
        if missing:
            raise IndexCorrupt(f"Milvus collection {self.record.chunks} lacks chunk rows {missing[:5]}; run `rag index LIBRARY --engine milvus --rebuild`")
        return np.asarray([by_row[int(r)] for r in rows], dtype=np.float32)

    def health(self) -> EngineHealth:
        extra = {"uri": redact(self.settings.uri), "collections": {"chunks": self.record.chunks, "patterns": self.record.patterns}}
        try:
            present = all(self._call(name, "has_collection", name) for name in (self.record.chunks, self.record.patterns))
        except (EngineUnavailable, IndexCorrupt) as exc:
            return EngineHealth(self.kind, False, str(exc), extra)
        return EngineHealth(self.kind, True, None if present else "a collection of the served build is missing; rebuild", extra)


def _scored(hits, scale: float, mask: np.ndarray | None) -> Scored:
    rows = np.fromiter((int(h["id"]) for h in hits), dtype=np.int64, count=len(hits))
    scores = np.fromiter((float(h["distance"]) * scale for h in hits), dtype=np.float64, count=len(hits)).astype(np.float32)
    if mask is not None and len(rows):
        inside = (rows < len(mask)) & mask[np.minimum(rows, len(mask) - 1)]
        rows, scores = rows[inside], scores[inside]
    order = np.lexsort((rows, -scores))  # best first, ties by row (the embedded engine's order)
    return Scored(rows[order], scores[order])


class MilvusBackend:
    kind = "milvus"

    def builder(self, settings: BuildSettings, patterns: Sequence[Pattern], chunks: Sequence[Chunk], vectors: np.ndarray,
                documents: dict[str, list[list[str]]], vector_settings: VectorSettings) -> MilvusBuild:
        return MilvusBuild(server(settings), patterns, chunks, vectors, documents, vector_settings, settings.lexical)

    def still_served(self, settings: BuildSettings, manifest: Manifest) -> bool:
        return still_served(server(settings), manifest)

    def open(self, build_dir: Path, manifest: Manifest, milvus: MilvusSettings | None) -> MilvusEngine:
        if manifest.milvus is None:
            raise IndexCorrupt(f"manifest of {build_dir} names the Milvus engine but no collections; run `rag index LIBRARY --engine milvus --rebuild`")
        counts = {"vectors": manifest.counts.chunks, "keywords": manifest.counts.patterns, "fulltext": manifest.counts.patterns, "passages": manifest.counts.chunks}
        try:
            postings = Postings.load(build_dir / POSTINGS)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorrupt(f"index in {build_dir} cannot be read ({POSTINGS}: {exc}); run `rag index LIBRARY --engine milvus --rebuild`") from exc
        if postings.size != manifest.counts.patterns:
            raise IndexCorrupt(f"index in {build_dir} is inconsistent ({POSTINGS} has {postings.size} documents for {manifest.counts.patterns} patterns); rebuild")
        return MilvusEngine.open(manifest.milvus, milvus, manifest.lexical, manifest.vectors, counts, postings)


def server(settings: BuildSettings) -> MilvusSettings:
    """The Milvus server a build writes to (the default local port when none is given)."""
    return (settings.milvus or MilvusSettings()).at(DEFAULT_MILVUS_URI)


BACKEND = MilvusBackend()
