"""Hybrid retriever: dense sections + keyword BM25 + full-text BM25 + known names, fused into patterns.

Each retriever ranks patterns (a pattern's score is its best chunk's score), restricted by the filter
mask before its cut; the ranked lists are fused by `rag.fusion`; names that match the whole query are
pinned first. Every hit carries each retriever's rank and raw score and the chunks that matched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from .embedding import Embedder
from .filters import Facets, FilterMasks, Filters, normalize
from .fusion import FusionMethod, convex_combination, ranked, reciprocal_rank_fusion
from .lexical import analyze
from .names import NameIndex, normalize_name, trigrams
from .results import Evidence, Hit, Results, RetrieverScore
from .searchindex import SearchIndex

RetrieverName = Literal["dense", "keywords", "fulltext", "names"]
RETRIEVERS: tuple[str, ...] = ("dense", "keywords", "fulltext", "names")


class QueryError(ValueError):
    """A request that cannot be answered as asked; `field` names the offending input."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class RetrieverSettings:
    # Defaults chosen on the dev sets (eval/tuning.md): a convex combination of min-max normalized
    # scores with the dense retriever leading beat RRF (k=60: bmn 0.79 -> 0.87 nDCG@10).
    fusion: FusionMethod = "convex"
    rrf_k: float = 60.0
    weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "keywords": 0.1, "fulltext": 0.5, "names": 0.5})
    # multiplier on a chunk's dense score by section role: the meta sections (examples, health signs, AI-era
    # notes) match many queries loosely; measured +0.015 nDCG@10 on commons-os, neutral on bmn and patterns/
    role_weights: dict[str, float] = field(default_factory=lambda: {"vitality": 0.95, "cognitive-era": 0.95, "known-uses": 0.95})
    dense_support: float = 0.05  # a pattern's dense score: its best chunk + this x the sum of its next 4 chunks
    dense_candidates: int = 300  # chunks fetched from the vector index before aggregation to patterns
    depth: int = 100  # patterns per retriever list entering fusion
    evidence: int = 3
    name_pin: float = 0.8  # a title/alias this similar to the whole query is pinned first
    name_min: float = 0.6
    name_aliases: bool = True  # match aliases as names, not only titles
    max_query_chars: int = 2000
    max_k: int = 100

    def with_(self, **changes) -> RetrieverSettings:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One retriever's ranked patterns: rows best-first and their raw scores."""

    rows: np.ndarray
    scores: np.ndarray


class Retriever:
    def __init__(self, index: SearchIndex, embedder: Embedder, settings: RetrieverSettings | None = None):
        self.index = index
        self.embedder = embedder
        self.settings = settings or RetrieverSettings()
        self.facets = Facets.of(index.patterns)
        self.masks = FilterMasks(index.patterns)
        self.names = NameIndex(index.patterns, aliases=self.settings.name_aliases)
        self._chunk_role_weight = np.array([self.settings.role_weights.get(c.role, 1.0) for c in index.chunks], dtype=np.float32)
        cp = index.chunk_pattern
        self._contiguous = bool(len(cp) == 0 or np.all(np.diff(cp) >= 0))

    # -- public API -------------------------------------------------------------------------
    def validate(self, query: str, k: int, filters: Filters) -> tuple[str, Filters]:
        if not isinstance(query, str) or not query.strip():
            raise QueryError("query", "query is empty; describe a situation or name a pattern")
        if len(query) > self.settings.max_query_chars:
            raise QueryError("query", f"query has {len(query)} characters; the limit is {self.settings.max_query_chars}")
        if not 1 <= k <= self.settings.max_k:
            raise QueryError("k", f"k must be between 1 and {self.settings.max_k}, got {k}")
        return query.strip(), normalize(filters, self.facets)

    def search(self, query: str, k: int = 10, filters: Filters = Filters(), group_duplicates: bool = False) -> Results:
        started = time.perf_counter()
        query, filters = self.validate(query, k, filters)
        runs, evidence, timings = self.run(query, filters)
        fused, pinned = self.fuse(runs)
        pinned_set = set(pinned)
        order = pinned + [row for row, _ in fused if row not in pinned_set]
        fused_score = dict(fused)
        hits: list[Hit] = []
        leaders: list[int] = []
        grouped: dict[int, list[int]] = {}
        for row in order:
            if group_duplicates:
                leader = next((lead for lead in leaders if self._duplicates(lead, row)), None)
                if leader is not None:
                    grouped[leader].append(row)
                    continue
            if len(leaders) == k:
                if group_duplicates:
                    continue
                break
            leaders.append(row)
            grouped[row] = []
        for rank, row in enumerate(leaders[:k], start=1):
            hits.append(self._hit(rank, row, fused_score.get(row, 0.0), runs, evidence, filters, tuple(self.index.patterns[r].slug for r in grouped[row])))
        timings["total"] = (time.perf_counter() - started) * 1000
        return Results(
            query=query,
            k=k,
            filters=filters.to_dict(),
            hits=tuple(hits),
            index_version=self.index.version,
            fusion={"method": self.settings.fusion, "rrf_k": self.settings.rrf_k, "rank_base": 1, "weights": dict(self.settings.weights)},
            timings_ms={name: round(ms, 3) for name, ms in timings.items()},
        )

    # -- stages -----------------------------------------------------------------------------
    def run(self, query: str, filters: Filters) -> tuple[dict[str, Ranked], dict[str, np.ndarray], dict[str, float]]:
        """Every enabled retriever's ranked patterns (filters applied before each cut)."""
        s = self.settings
        pattern_mask = self.masks.mask(filters)
        chunk_mask = None if pattern_mask is None else pattern_mask[self.index.chunk_pattern]
        runs: dict[str, Ranked] = {}
        evidence: dict[str, np.ndarray] = {}
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = (now - clock) * 1000
            clock = now

        if s.weights.get("dense", 0) > 0:
            vector = self.embedder.encode_query(query)
            lap("encode")
            scores, rows = self.index.vectors.search(vector, s.dense_candidates, chunk_mask)
            scores = scores * self._chunk_role_weight[rows]
            evidence["dense_rows"], evidence["dense_scores"] = rows, scores
            runs["dense"] = self._best_per_pattern(rows, scores)
            lap("dense")
        tokens = analyze(query)
        if s.weights.get("keywords", 0) > 0:
            scores = self.index.keywords.scores(tokens)
            runs["keywords"] = self._top(scores, pattern_mask)
            lap("keywords")
        if s.weights.get("fulltext", 0) > 0:
            runs["fulltext"] = self._top(self.index.fulltext.scores(tokens), pattern_mask)
            evidence["tokens"] = tokens  # type: ignore[assignment]
            lap("fulltext")
        if s.weights.get("names", 0) > 0:
            matches = self.names.match(query, s.name_min, pattern_mask)
            runs["names"] = Ranked(np.array([m.row for m in matches], dtype=np.int64), np.array([m.similarity for m in matches], dtype=np.float32))
            evidence["name_of"] = {m.row: m.name for m in matches}  # type: ignore[assignment]
            lap("names")
        return runs, evidence, timings

    def fuse(self, runs: dict[str, Ranked]) -> tuple[list[tuple[int, float]], list[int]]:
        """Fused (row, score) best-first, and the rows pinned first because the query is their name."""
        s = self.settings
        if s.fusion == "rrf":
            lists = {name: [str(r) for r in run.rows[: s.depth]] for name, run in runs.items()}
            fused = reciprocal_rank_fusion(lists, k=s.rrf_k, weights=s.weights)
        else:
            lists = {name: {str(r): float(v) for r, v in zip(run.rows[: s.depth], run.scores[: s.depth])} for name, run in runs.items()}
            fused = convex_combination(lists, s.weights)
        names = runs.get("names")
        pinned = [] if names is None else [int(r) for r, sim in zip(names.rows, names.scores) if sim >= s.name_pin]
        return [(int(doc), score) for doc, score in ranked(fused)], pinned

    # -- helpers ----------------------------------------------------------------------------
    def _best_per_pattern(self, chunk_rows: np.ndarray, chunk_scores: np.ndarray) -> Ranked:
        """Pattern score = best chunk + `dense_support` x the next four (chunks arrive best-first)."""
        found: dict[int, list[float]] = {}
        for row, score in zip(self.index.chunk_pattern[chunk_rows].tolist(), chunk_scores.tolist()):
            found.setdefault(row, []).append(score)
        support = self.settings.dense_support
        best = {row: (s := sorted(v, reverse=True))[0] + support * sum(s[1:5]) for row, v in found.items()}
        items = sorted(best.items(), key=lambda kv: -kv[1])
        return Ranked(np.array([r for r, _ in items], dtype=np.int64), np.array([v for _, v in items], dtype=np.float32))

    def _top(self, scores: np.ndarray, mask: np.ndarray | None) -> Ranked:
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        depth = min(self.settings.depth, int((scores > 0).sum()))
        if depth == 0:
            return Ranked(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.lexsort((top, -scores[top]))]
        return Ranked(top.astype(np.int64), scores[top].astype(np.float32))

    def _hit(self, rank: int, row: int, score: float, runs, evidence, filters: Filters, duplicates: tuple[str, ...]) -> Hit:
        pattern = self.index.patterns[row]
        per: dict[str, RetrieverScore] = {}
        for name, run in runs.items():
            where = np.flatnonzero(run.rows == row)
            if len(where):
                per[name] = RetrieverScore(int(where[0]) + 1, round(float(run.scores[where[0]]), 6))
        return Hit(
            slug=pattern.slug,
            title=pattern.title,
            summary=pattern.summary,
            domains=pattern.domains,
            rank=rank,
            score=round(float(score), 6),
            retrievers=per,
            evidence=self._evidence(row, evidence),
            context=filters.context,
            context_label=pattern.context_label(filters.context) if filters.context else None,
            name_match=evidence.get("name_of", {}).get(row),
            duplicates=duplicates,
        )

    def _evidence(self, row: int, evidence: dict) -> tuple[Evidence, ...]:
        out: list[Evidence] = []
        seen: set[int] = set()
        rows, scores = evidence.get("dense_rows"), evidence.get("dense_scores")
        if rows is not None:
            mine = np.flatnonzero(self.index.chunk_pattern[rows] == row)
            for i in mine[: self.settings.evidence]:
                seen.add(int(rows[i]))
                out.append(self._evidence_item(int(rows[i]), float(scores[i]), "dense"))
        tokens = evidence.get("tokens")
        if tokens and len(out) < self.settings.evidence:
            chunk_rows = np.flatnonzero(self.index.chunk_pattern == row) if not self._contiguous else self._chunk_range(row)
            if "passage_scores" not in evidence:  # computed once per search, only when a hit needs it
                evidence["passage_scores"] = self.index.passages.scores(tokens)
            passage_scores = evidence["passage_scores"][chunk_rows]
            for i in np.argsort(-passage_scores, kind="stable"):
                if len(out) >= self.settings.evidence or passage_scores[i] <= 0:
                    break
                if int(chunk_rows[i]) not in seen:
                    out.append(self._evidence_item(int(chunk_rows[i]), float(passage_scores[i]), "fulltext"))
        return tuple(out)

    def _chunk_range(self, row: int) -> np.ndarray:
        cp = self.index.chunk_pattern
        return np.arange(np.searchsorted(cp, row, "left"), np.searchsorted(cp, row, "right"))

    def _evidence_item(self, chunk_row: int, score: float, retriever: str) -> Evidence:
        chunk = self.index.chunks[chunk_row]
        body = chunk.text.split("\n", 1)[-1]
        snippet = body if len(body) <= 320 else body[:317].rsplit(" ", 1)[0] + "..."
        return Evidence(chunk.id, chunk.section, chunk.role, snippet, round(score, 6), retriever)

    def _duplicates(self, a: int, b: int) -> bool:
        """Near-duplicates: one slug extends the other (kanban / kanban-production) or the titles nearly match."""
        pa, pb = self.index.patterns[a], self.index.patterns[b]
        sa, sb = pa.slug, pb.slug
        if sb.startswith(sa + "-") or sa.startswith(sb + "-"):
            return True
        ta, tb = trigrams(normalize_name(pa.title)), trigrams(normalize_name(pb.title))
        return 2 * len(ta & tb) / max(1, len(ta) + len(tb)) >= 0.7
