"""The hybrid retriever: it only orchestrates. validate -> encode -> signals -> fuse -> pin -> group -> evidence.

Each signal (`rag.search.signals`) ranks patterns under the filter before its own cut; the runs are fused
by the pure functions of `rag.search.fusion`; a title or alias that is the whole query is pinned first.
Every hit carries each signal's rank and raw score and the passages that matched.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.config import RetrieverSettings
from rag.embedding.encoder import Encoder
from rag.errors import QueryError, RagError, UnknownFilterValue
from rag.index.engine import Scored, Selection
from rag.index.lexical import analyze
from rag.index.search_index import SearchIndex
from rag.records.filters import Filters
from rag.records.results import Hit, Results, RetrieverScore
from rag.search import duplicates
from rag.search.calibration import Calibration
from rag.search.calibration import features as calibration_features
from rag.search.evidence import evidence_for
from rag.search.filters import Facets, FilterMasks, normalize
from rag.search.fusion import convex_combination, ranked, reciprocal_rank_fusion
from rag.search.signals import SIGNALS, Signal, SignalQuery, SignalRun

RETRIEVERS: tuple[str, ...] = tuple(SIGNALS)
EMPTY_QUERY = "query is empty; describe a situation or name a pattern"  # also the HTTP API's answer to ""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search of a batch (`Retriever.search_many`)."""

    query: str
    k: int = 10
    filters: Filters = Filters()
    group_duplicates: bool = False
    reader: str | None = None


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped calibration (rag/search/calibration.json), read once per process."""
    return Calibration.load()


@functools.lru_cache(maxsize=1)
def default_ranker():
    """The shipped learned-fusion weights (rag/search/ranker.json), read once per process."""
    from rag.search.learned import LinearRanker

    return LinearRanker.load()


class Retriever:
    def __init__(self, index: SearchIndex, embedder: Encoder, settings: RetrieverSettings | None = None, calibration: Calibration | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieverSettings()
        self.calibration = calibration or default_calibration()
        self.facets = Facets.of(index.patterns)
        self.masks = FilterMasks(index.patterns)
        self.ranker = default_ranker() if self.settings.fusion == "learned" else None
        self.signals: dict[str, Signal] = {name: cls(index, self.settings) for name, cls in SIGNALS.items() if self.settings.weights.get(name, 0) > 0}

    # -- public API -------------------------------------------------------------------------
    def validate(self, query: str, k: int, filters: Filters) -> tuple[str, Filters]:
        if not isinstance(query, str) or not query.strip():
            raise QueryError("query", EMPTY_QUERY)
        if len(query) > self.settings.max_query_chars:
            raise QueryError("query", f"query has {len(query)} characters; the limit is {self.settings.max_query_chars}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.settings.max_k:
            raise QueryError("k", f"k must be between 1 and {self.settings.max_k}, got {k}")
        return query.strip(), normalize(filters, self.facets)

    def search(self, query: str, k: int = 10, filters: Filters = Filters(), group_duplicates: bool = False, reader: str | None = None) -> Results:
        """`reader` ranks and labels for that context without filtering by it (the context filter does both)."""
        started = time.perf_counter()
        text, filters = self.validate(query, k, filters)
        reader = self.validate_reader(reader, filters)
        timings: dict[str, float] = {}
        vector = None
        if self.needs_vector:
            clock = time.perf_counter()
            vector = self.embedder.encode_query(text)
            timings["encode"] = (time.perf_counter() - clock) * 1000
        return self._finish(text, k, filters, group_duplicates, vector, timings, started, reader)

    def validate_reader(self, reader: str | None, filters: Filters) -> str | None:
        """The context to rank for: `reader` (validated like the context filter), else the context filter."""
        if reader is None or not str(reader).strip():
            return filters.context
        try:
            return normalize(Filters(context=reader), self.facets).context
        except UnknownFilterValue as exc:
            raise UnknownFilterValue("reader", exc.value, exc.valid) from None

    def rerank(self, fused: list[tuple[int, float]], runs: dict[str, SignalRun], vector, tokens: Sequence[str], reader: str | None, filters: Filters) -> list[tuple[int, float]]:
        """The learned fusion's order of the candidates (rag/search/learned.py): convex score + linear corrections."""
        extractor = self.learned_extractor()
        rows = extractor.candidates(runs, self.settings.depth)
        X = extractor.features(rows, vector, tokens, runs, reader, self.selection(filters), dict(fused))
        return ranked(dict(zip(rows.tolist(), self.ranker.score(X).tolist())))

    def learned_extractor(self):
        """The feature extractor of the learned fusion (rag/search/learned.py), built once per retriever."""
        if getattr(self, "_extractor", None) is None:
            from rag.search.learned import FeatureExtractor, hub_prior

            index = self.index
            hub = index.hub
            if hub is None:  # a build made before the prior was stored: compute it from the chunk vectors once
                n_chunks = len(index.chunks)
                vectors = index.engine.chunk_vectors(np.arange(n_chunks, dtype=np.int64)) if n_chunks else np.zeros((0, 1), np.float32)
                hub = hub_prior(vectors, np.asarray(index.chunk_pattern), list(index.chunks.roles), len(index.patterns))
            self._extractor = FeatureExtractor(index, hub, self.settings.dense_support, self.settings.dense_support_chunks)
        return self._extractor

    @property
    def needs_vector(self) -> bool:
        return any(signal.needs_vector for signal in self.signals.values())

    # -- stages -----------------------------------------------------------------------------
    def selection(self, filters: Filters) -> Selection:
        patterns = self.masks.mask(filters)
        return Selection(filters, patterns, None if patterns is None else patterns[self.index.chunk_pattern])

    def search_many(self, requests: Sequence[SearchRequest]) -> list[Results | RagError]:
        """Several searches at once (the micro-batcher's call): one forward pass encodes every query, one
        vector search per distinct filter serves all of its queries. Each request gets its own Results
        (same hits as `search` alone) or its own error; timings say the batch size."""
        started = time.perf_counter()
        out: list[Results | RagError | None] = [None] * len(requests)
        ready: list[tuple[int, str, Filters, str | None]] = []
        for i, r in enumerate(requests):
            try:
                text, filters = self.validate(r.query, r.k, r.filters)
                ready.append((i, text, filters, self.validate_reader(r.reader, filters)))
            except RagError as exc:
                out[i] = exc
        vectors: np.ndarray | None = None
        encode_ms = dense_ms = 0.0
        prefetched: dict[int, Scored] = {}
        if ready and self.needs_vector:
            clock = time.perf_counter()
            vectors = self.embedder.encode([text for _, text, _, _ in ready])
            encode_ms = (time.perf_counter() - clock) * 1000
            if "dense" in self.signals:
                clock = time.perf_counter()
                by_filter: dict[Filters, list[int]] = {}
                for n, (_, _, filters, _) in enumerate(ready):
                    by_filter.setdefault(filters, []).append(n)
                for filters, members in by_filter.items():
                    found = self.index.engine.dense(vectors[members], self.settings.dense_candidates, self.selection(filters))
                    prefetched.update(zip(members, found))
                dense_ms = (time.perf_counter() - clock) * 1000
        for n, (i, text, filters, reader) in enumerate(ready):
            timings = {"batch": float(len(ready)), "encode": encode_ms, "dense_batch": dense_ms}
            extra = {"dense": prefetched[n]} if n in prefetched else {}
            r = requests[i]
            try:
                out[i] = self._finish(text, r.k, filters, r.group_duplicates, None if vectors is None else vectors[n], timings, started, reader, extra)
            except RagError as exc:
                out[i] = exc
        return out  # type: ignore[return-value]

    def run(self, text: str, filters: Filters, vector: np.ndarray | None, timings: dict[str, float], reader: str | None = None, prefetched: Mapping[str, Scored] | None = None) -> tuple[dict[str, SignalRun], tuple[str, ...]]:
        """Every enabled signal's run (filters applied before each cut), timed per signal."""
        query = SignalQuery(text, tuple(analyze(text)), self.selection(filters), vector, reader or filters.context, dict(prefetched or {}))
        runs: dict[str, SignalRun] = {}
        for name, signal in self.signals.items():
            clock = time.perf_counter()
            runs[name] = signal.rank(query)
            timings[name] = (time.perf_counter() - clock) * 1000
        return runs, query.tokens

    def fuse(self, runs: dict[str, SignalRun]) -> tuple[list[tuple[int, float]], list[int]]:
        """Fused (row, score) best-first, and the rows pinned first because the query is their name."""
        s = self.settings
        if s.fusion == "rrf":
            fused = reciprocal_rank_fusion({name: run.rows[: s.depth].tolist() for name, run in runs.items()}, k=s.rrf_k, weights=s.weights)
        else:
            lists = {name: dict(zip(run.rows[: s.depth].tolist(), run.scores[: s.depth].tolist())) for name, run in runs.items()}
            fused = convex_combination(lists, s.weights)
        fused_ranked = ranked(fused)
        score = dict(fused_ranked)
        similarity: dict[int, float] = {}
        for run in runs.values():
            for row, value in zip(run.rows.tolist(), run.scores.tolist()):
                if row in run.pinnable:
                    similarity[row] = max(similarity.get(row, 0.0), value)
        # pinned hits lead, the closest name first, then by the evidence of the fused score (issue 12)
        pinned = sorted(similarity, key=lambda row: (-similarity[row], -score.get(row, 0.0), row))
        return fused_ranked, pinned

    def _finish(self, text: str, k: int, filters: Filters, group_duplicates: bool, vector, timings: dict[str, float], started: float, reader: str | None = None, prefetched: Mapping[str, Scored] | None = None) -> Results:
        runs, tokens = self.run(text, filters, vector, timings, reader, prefetched)
        fused, pinned = self.fuse(runs)
        if self.settings.fusion == "learned":
            clock = time.perf_counter()
            fused = self.rerank(fused, runs, vector, tokens, reader, filters)
            timings["learned"] = (time.perf_counter() - clock) * 1000
        pinned_set = set(pinned)
        order = pinned + [row for row, _ in fused if row not in pinned_set]
        if group_duplicates:
            leaders = duplicates.group(order, self.index.patterns, k, self.settings.duplicate_title_dice)
        else:
            leaders = [(row, []) for row in order[:k]]
        fused_score = dict(fused)
        relevance = self.calibration.relevance(calibration_features(self.index, [row for row, _ in leaders], runs, tokens))
        hits = tuple(
            self._hit(rank, row, fused_score.get(row, 0.0), runs, tokens, reader, absorbed, row in pinned_set, float(relevance[rank - 1]))
            for rank, (row, absorbed) in enumerate(leaders, start=1)
        )
        timings["total"] = (time.perf_counter() - started) * 1000
        s = self.settings
        threshold = self.calibration.threshold
        return Results(
            query=text,
            k=k,
            filters=filters.to_dict(),
            hits=hits,
            index_version=self.index.version,
            fusion={"method": s.fusion, "rrf_k": s.rrf_k, "rank_base": 1, "weights": dict(s.weights)},
            timings_ms={name: round(ms, 3) for name, ms in timings.items()},
            no_good_match=not hits or max(h.relevance for h in hits) < threshold,
            relevance_threshold=round(threshold, 6),
        )

    def _hit(self, rank: int, row: int, score: float, runs: dict[str, SignalRun], tokens: Sequence[str], reader: str | None, absorbed: list[int], pinned: bool, relevance: float) -> Hit:
        pattern = self.index.patterns[row]
        per: dict[str, RetrieverScore] = {}
        for name, run in runs.items():
            at = run.rank_of(row)
            if at is not None:
                per[name] = RetrieverScore(at, round(float(run.scores[at - 1]), 6))
        names = runs.get("names")
        return Hit(
            slug=pattern.slug,
            title=pattern.title,
            summary=pattern.brief,
            domains=pattern.domains,
            rank=rank,
            score=round(float(score), 6),
            retrievers=per,
            evidence=evidence_for(self.index, row, runs, tokens, self.settings),
            context=reader,
            context_label=pattern.context_label(reader) if reader else None,
            name_match=None if names is None else names.names.get(row),
            duplicates=tuple(self.index.patterns[r].slug for r in absorbed),
            pinned=pinned,
            relevance=round(relevance, 6),
        )
