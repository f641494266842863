"""The hybrid retriever: it only orchestrates. prepare -> encode -> signals -> fuse -> pin -> group -> evidence.

`prepare` is the one place a search request is checked against the index (rag.search.query); each signal
(`rag.search.signals`) then ranks patterns under the filter before its own cut; the runs are fused by the pure
functions of `rag.search.fusion`; a title or alias that is the whole query is pinned first. Every hit carries
each signal's rank and raw score and the passages that matched.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rag.config import RetrieverSettings
from rag.embedding.encoder import Encoder
from rag.errors import QueryError, RagError, UnknownFilterValue
from rag.index.engine import Selection
from rag.index.lexical import analyze
from rag.index.search_index import SearchIndex
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.records.results import Hit, Results, RetrieverScore
from rag.search import duplicates
from rag.search.calibration import Calibration, query_features
from rag.search.evidence import evidence_for
from rag.search.filters import Facets, FilterMasks, normalize
from rag.search.fusion import convex_combination, ranked, reciprocal_rank_fusion
from rag.search.learned import FeatureExtractor, LinearRanker, core_norms, hub_prior
from rag.search.query import PreparedQuery
from rag.search.signals import SIGNALS, Signal, SignalRun

EMPTY_QUERY = "query is empty; describe a situation or name a pattern"  # also the HTTP API's answer to ""


@functools.lru_cache(maxsize=1)
def default_calibration() -> Calibration:
    """The shipped calibration (rag/search/calibration.json), read once per process."""
    return Calibration.load()


@functools.lru_cache(maxsize=1)
def default_ranker() -> LinearRanker:
    """The shipped learned-fusion weights (rag/search/ranker.json), read once per process."""
    return LinearRanker.load()


def check_text(field: str, value: str | None) -> str | None:
    """Reject text that cannot be encoded (lone surrogates) before it reaches the tokenizers."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryError(field, f"{field} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise QueryError(field, f"{field} contains invalid Unicode (a lone surrogate); send UTF-8 text") from None
    return value


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@contextlib.contextmanager
def timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Adds a stage's wall milliseconds to `timings[stage]` and the calling thread's CPU milliseconds to
    `timings["cpu_" + stage]` (the bench breaks a request's CPU down by stage with them)."""
    if timings is None:
        yield
        return
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - wall) * 1000
        timings[f"cpu_{stage}"] = timings.get(f"cpu_{stage}", 0.0) + (time.thread_time() - cpu) * 1000


class VectorCache:
    """The vectors of the most recently encoded query texts (least recently used evicted first), for every thread."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, text: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        if self.size <= 0:
            return None
        with self._lock:
            found = self._items.get(text)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(text)
            self.hits += 1
            return found

    def put(self, text: str, vectors: tuple[np.ndarray, np.ndarray | None]) -> None:
        if self.size <= 0:
            return
        for array in vectors:
            if array is not None:
                array.setflags(write=False)  # shared by every later query of the same text: never written
        with self._lock:
            self._items[text] = vectors
            self._items.move_to_end(text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Ranking:
    """A query's ranking before hits are made: each signal's run, the fused (row, score) list best-first (learned
    or convex), and the rows pinned first because the query is their name."""

    runs: dict[str, SignalRun]
    fused: list[tuple[int, float]]
    pinned: list[int]

    @property
    def order(self) -> list[int]:
        pinned = set(self.pinned)
        return self.pinned + [row for row, _ in self.fused if row not in pinned]


class Retriever:
    def __init__(
        self,
        index: SearchIndex,
        embedder: Encoder,
        settings: RetrieverSettings | None = None,
        calibration: Calibration | None = None,
        ranker: LinearRanker | None = None,
        features: frozenset[str] | None = None,
    ):
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieverSettings()
        fitted = index.fit if self.settings.use_fit else None  # `rag fit` stored a ranking fitted to this library
        if calibration is None and fitted is not None:
            calibration = Calibration(**fitted["calibration"])
        if ranker is None and fitted is not None:
            ranker = LinearRanker({k: float(v) for k, v in fitted["ranker"]["weights"].items()}, fitted["ranker"].get("source", "rag fit"))
        self.calibration = calibration or default_calibration()
        self.facets = Facets.of(index.patterns)
        self.masks = FilterMasks(index.patterns)
        self.ranker = (ranker or default_ranker()) if self.settings.fusion == "learned" else None
        self.features = features  # the learned features to compute (None: those the ranker weighs); the lab computes all
        self.cache = VectorCache(self.settings.query_cache)
        self.extractor = self._extractor() if self.ranker is not None else None
        self.signals: dict[str, Signal] = {
            name: cls(index, self.settings) for name, cls in SIGNALS.items() if self.settings.weights.get(name, 0) > 0
        }

    @property
    def needs_vector(self) -> bool:
        return any(signal.needs_vector for signal in self.signals.values())

    # -- the one check of a request ---------------------------------------------------------------
    def prepare(self, request: SearchRequest) -> PreparedQuery:
        """The request checked against the index (text, k, offset, filters, reader), with its tokens and selection."""
        s = self.settings
        query = check_text("query", request.query)
        if not isinstance(query, str) or not query.strip():
            raise QueryError("query", EMPTY_QUERY)
        if len(query) > s.max_query_chars:
            raise QueryError("query", f"query has {len(query)} characters; the limit is {s.max_query_chars}")
        offset, k = request.offset, request.k
        if not _whole(offset) or not 0 <= offset < s.max_k:
            raise QueryError("offset", f"offset must be a whole number from 0 to {s.max_k - 1}, got {offset}")
        if not _whole(k) or not 1 <= k <= s.max_k - offset:
            if offset:
                raise QueryError(
                    "k", f"k must be between 1 and {s.max_k - offset} with offset {offset} (offset + k is at most {s.max_k}), got {k}"
                )
            raise QueryError("k", f"k must be between 1 and {s.max_k}, got {k}")
        filters = self.normalize_filters(request.filters)
        text = query.strip()
        return PreparedQuery(
            text=text,
            k=k + offset,
            offset=offset,
            filters=filters,
            reader=self.normalize_reader(request.reader, filters),
            group_duplicates=bool(request.group_duplicates),
            tokens=tuple(analyze(text)),
            selection=self.selection(filters),
            engine=self.index.engine,
        )

    def normalize_filters(self, filters: Filters) -> Filters:
        """Filter values checked against the index's facets (UnknownFilterValue lists the valid ones)."""
        for name in ("domain", "context", "status"):
            check_text(name, getattr(filters, name))
        return normalize(filters, self.facets)

    def normalize_reader(self, reader: str | None, filters: Filters) -> str | None:
        """The context to rank for: `reader` (validated like the context filter), else the context filter."""
        check_text("reader", reader)
        if reader is None or not str(reader).strip():
            return filters.context
        try:
            return normalize(Filters(context=reader), self.facets).context
        except UnknownFilterValue as exc:
            raise UnknownFilterValue("reader", exc.value, exc.valid) from None

    def selection(self, filters: Filters) -> Selection:
        """Normalized filters as masks over pattern and chunk rows (built once per query, in `prepare`)."""
        patterns = self.masks.mask(filters)
        return Selection(filters, patterns, None if patterns is None else patterns[self.index.chunk_pattern])

    # -- search -----------------------------------------------------------------------------------
    def search(
        self,
        query: str | SearchRequest,
        k: int = 10,
        filters: Filters = Filters(),
        group_duplicates: bool = False,
        reader: str | None = None,
        offset: int = 0,
    ) -> Results:
        """One search (`query` a text, or a whole request). `reader` ranks and labels for that context without
        filtering by it (the context filter does both)."""
        request = query if isinstance(query, SearchRequest) else SearchRequest(query, k, offset, filters, group_duplicates, reader)
        return self.run(self.prepare(request))

    def run(self, query: PreparedQuery) -> Results:
        """The results of a prepared query (encoding it when a signal needs its vector)."""
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if self.needs_vector and query.vector is None:
            with timed(timings, "encode"):
                query = self.encode([query])[0]
        return self._finish(query, timings, started)

    def encode(self, queries: Sequence[PreparedQuery]) -> list[PreparedQuery]:
        """The queries with their vectors, and (when the learned fusion reads them) the vectors of a narrative query's
        sentences, all in one encoder pass; a query text encoded before comes from the cache of query vectors."""
        wants_sentences = self.extractor is not None and self.extractor.needs_sentences
        found: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for i, q in enumerate(queries):
            hit = self.cache.get(q.text)
            if hit is not None:
                found[i] = hit
        todo = [i for i in range(len(queries)) if i not in found]
        parts = {i: queries[i].sentences if wants_sentences else () for i in todo}
        texts = [queries[i].text for i in todo] + [s for i in todo for s in parts[i]]
        if len(texts) == 1:
            found[todo[0]] = (self.embedder.encode_query(texts[0]), None)
        elif texts:
            vectors = self.embedder.encode(texts)
            at = len(todo)
            for n, i in enumerate(todo):
                sentences = vectors[at : at + len(parts[i])] if parts[i] else None
                at += len(parts[i])
                found[i] = (vectors[n], sentences)
        out = []
        for i, q in enumerate(queries):
            vector, sentences = found[i]
            if i in parts:
                self.cache.put(q.text, (vector, sentences))
            q = q.with_vector(vector)
            out.append(q.with_sentences(sentences) if sentences is not None else q)
        return out

    def run_many(self, queries: Sequence[PreparedQuery]) -> list[Results | RagError]:
        """Several prepared queries at once (the micro-batcher's call): one forward pass encodes every query, one
        vector search per distinct filter serves all of its queries. Each gets its own Results (the same hits as
        `run` alone) or its own error; timings say the batch size."""
        started = time.perf_counter()
        queries = list(queries)
        batch: dict[str, float] = {}
        if queries and self.needs_vector:
            with timed(batch, "encode"):
                queries = self.encode(queries)
                vectors = np.stack([q.vector for q in queries if q.vector is not None])
            if "dense" in self.signals:
                with timed(batch, "dense_batch"):
                    queries = self._dense_batch(queries, vectors)
        out: list[Results | RagError] = []
        for q in queries:
            timings = {"batch": float(len(queries)), **{name: ms / len(queries) for name, ms in batch.items()}}  # a share per query
            try:
                out.append(self._finish(q, timings, started))
            except RagError as exc:
                out.append(exc)
        return out

    def _dense_batch(self, queries: list[PreparedQuery], vectors: np.ndarray) -> list[PreparedQuery]:
        """One vector search per distinct filter serves all of its queries of a batch."""
        by_filter: dict[Filters, list[int]] = {}
        for n, q in enumerate(queries):
            by_filter.setdefault(q.filters, []).append(n)
        for members in by_filter.values():
            found = self.index.engine.dense(vectors[members], self.settings.dense_candidates, queries[members[0]].selection)
            for n, hits in zip(members, found):
                queries[n] = queries[n].with_dense(hits)
        return queries

    # -- stages -----------------------------------------------------------------------------------
    def signal_runs(self, query: PreparedQuery, timings: dict[str, float] | None = None) -> dict[str, SignalRun]:
        """Every enabled signal's run (filters applied before each cut), timed per signal."""
        runs: dict[str, SignalRun] = {}
        for name, signal in self.signals.items():
            with timed(timings, name):
                runs[name] = signal.rank(query)
        return runs

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

    def candidate_features(
        self, query: PreparedQuery, runs: dict[str, SignalRun], fused: list[tuple[int, float]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The learned fusion's candidates (pattern rows) and their features (rag/search/learned.py)."""
        assert self.extractor is not None, "candidate features belong to the learned fusion"
        rows = self.extractor.candidates(runs, self.settings.depth)
        return rows, self.extractor.features(rows, query, runs, dict(fused))

    def rank(self, query: PreparedQuery, timings: dict[str, float] | None = None) -> Ranking:
        """Signals, fusion (learned: convex score + linear corrections) and pinning of a prepared query."""
        runs = self.signal_runs(query, timings)
        fused, pinned = self.fuse(runs)
        if self.ranker is not None:
            with timed(timings, "learned"):
                rows, X = self.candidate_features(query, runs, fused)
                fused = ranked(dict(zip(rows.tolist(), self.ranker.score(X).tolist())))
        return Ranking(runs, fused, pinned)

    def _extractor(self) -> FeatureExtractor:
        index = self.index
        hub, norms = index.hub, index.core_norms
        if hub is None or norms is None:  # a build made before the priors were stored: compute them from the chunk vectors once
            n_chunks = len(index.chunks)
            vectors = index.engine.chunk_vectors(np.arange(n_chunks, dtype=np.int64)) if n_chunks else np.zeros((0, 1), np.float32)
            owners, roles = np.asarray(index.chunk_pattern), list(index.chunks.roles)
            hub = hub if hub is not None else hub_prior(vectors, owners, roles, len(index.patterns))
            norms = norms if norms is not None else core_norms(vectors, owners, roles, len(index.patterns))
        active = self.features if self.features is not None else self.ranker.active if self.ranker is not None else None
        return FeatureExtractor(index, hub, self.settings.dense_support, self.settings.dense_support_chunks, norms, active)

    def _finish(self, query: PreparedQuery, timings: dict[str, float], started: float) -> Results:
        ranking = self.rank(query, timings)
        order = ranking.order
        if query.group_duplicates:
            leaders = duplicates.group(order, self.index.patterns, query.k, self.settings.duplicate_title_dice)
        else:
            leaders = [(row, []) for row in order[: query.k]]
        page = leaders[query.offset :]
        rows = [row for row, _ in page]
        fused_score = dict(ranking.fused)
        pinned = set(ranking.pinned)
        ranked_rows = [row for row, _ in leaders]
        with timed(timings, "calibration"):
            relevance = self.calibration.relevance(
                [fused_score.get(row, 0.0) for row in ranked_rows],
                [row in pinned for row in ranked_rows],
                query_features(ranked_rows, ranking.runs, query, len(self.index.patterns)),
            )
        with timed(timings, "evidence"):
            evidence = evidence_for(self.index, rows, ranking.runs, query.tokens, self.settings)
        with timed(timings, "records"):
            hits = self._hits(query, page, fused_score, ranking, pinned, relevance, evidence)
        timings["total"] = (time.perf_counter() - started) * 1000
        s = self.settings
        threshold = self.calibration.threshold
        more = query.k < s.max_k and len(leaders) == query.k and (query.group_duplicates or len(order) > query.k)
        return Results(
            query=query.text,
            k=query.page,
            filters=query.filters.to_dict(),
            hits=hits,
            index_version=self.index.version,
            fusion={"method": s.fusion, "rrf_k": s.rrf_k, "rank_base": 1, "weights": dict(s.weights)},
            timings_ms={name: round(ms, 3) for name, ms in timings.items()},
            no_good_match=not leaders or round(float(relevance[0]), 6) < threshold,
            relevance_threshold=round(threshold, 6),
            offset=query.offset,
            next_offset=query.k if more else None,
        )

    def _hits(
        self, query: PreparedQuery, page, fused_score: dict, ranking: Ranking, pinned: set, relevance: np.ndarray, evidence
    ) -> tuple[Hit, ...]:
        return tuple(
            self._hit(
                query.offset + n + 1,
                row,
                fused_score.get(row, 0.0),
                ranking.runs,
                query.reader,
                absorbed,
                row in pinned,
                float(relevance[query.offset + n]),
                evidence[n],
            )
            for n, (row, absorbed) in enumerate(page)
        )

    def _hit(
        self,
        rank: int,
        row: int,
        score: float,
        runs: dict[str, SignalRun],
        reader: str | None,
        absorbed: list[int],
        pinned: bool,
        relevance: float,
        evidence,
    ) -> Hit:
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
            evidence=evidence,
            context=reader,
            context_label=pattern.context_label(reader) if reader else None,
            name_match=None if names is None else names.names.get(row),
            duplicates=tuple(self.index.patterns[r].slug for r in absorbed),
            pinned=pinned,
            relevance=round(relevance, 6),
        )
