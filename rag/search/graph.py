"""The pattern graph: curated relationships read both ways, and "more like this" from the vectors.

`Graph` precomputes outgoing and incoming edges once per index. A target that is not a slug is resolved
as the loader does (by id, title or alias: rag/load/links.py), so indexes built before the loader
resolved names get the same edges; a target still outside the index is dangling: no edge, but counted
and listed per pattern, so `/related` can say why a pattern has none. `similar` compares patterns by their centroids:
the mean vector of the chunks that say what each is about (LEFT_OUT_OF_CENTROID names the others).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rag.index.search_index import SearchIndex
from rag.load.links import TargetResolver
from rag.records.pattern import Pattern

Direction = Literal["outgoing", "incoming", "both"]

# How an edge reads from its target's side: A enables B means B is enabled by A.
INVERSE: dict[str, str] = {
    "generalizes_from": "specializes_to",
    "specializes_to": "generalizes_from",
    "enables": "enabled_by",
    "requires": "required_by",
    "alternatives": "alternatives",
    "complementary": "complementary",
    "tools": "tool_for",
    "related": "related",
}


@dataclass(frozen=True, slots=True)
class RelatedPattern:
    """One edge seen from the queried pattern P: "P <relation> slug" (the curated kind, inverted when incoming).

    An edge curated on both sides with the same relation (A complementary B, B complementary A) is
    reported once with direction "both" and the larger weight.
    """

    slug: str
    title: str
    kind: str  # the kind as written in the file that declares the edge
    relation: str
    direction: Direction
    weight: float | None
    description: str = ""
    resolved_by: str | None = None  # "title" or "alias": the declaring file named the target, not its slug


@dataclass(frozen=True, slots=True)
class SimilarPattern:
    slug: str
    title: str
    score: float  # cosine between the asked pattern's centroid and this pattern's (graph.pattern_centroids)
    chunk_id: str  # this pattern's chunk closest to the asked pattern's centroid


@dataclass(frozen=True, slots=True)
class _Edge:
    source: str
    target: str
    kind: str
    weight: float | None
    description: str
    resolved_by: str | None = None


class Graph:
    """Outgoing and incoming curated edges per slug, computed once from an index's patterns."""

    def __init__(self, patterns: Sequence[Pattern]):
        self._titles = {p.slug: p.title for p in patterns}
        self._out: dict[str, list[_Edge]] = {p.slug: [] for p in patterns}
        self._in: dict[str, list[_Edge]] = {p.slug: [] for p in patterns}
        self._dangling: dict[str, tuple[str, ...]] = {}
        resolver = TargetResolver.of(patterns)
        seen: set[tuple[str, str, str]] = set()
        for p in patterns:
            outside: list[str] = []
            for r in p.relationships:
                found = resolver.resolve(r.target, p.slug)
                if found.slug is None:
                    outside.append(r.target)
                    continue
                key = (p.slug, found.slug, r.kind)
                if found.slug == p.slug or key in seen:
                    continue
                seen.add(key)
                edge = _Edge(p.slug, found.slug, r.kind, r.weight, r.description, r.resolved_by or found.resolved_by)
                self._out[p.slug].append(edge)
                self._in[found.slug].append(edge)
            if outside:
                self._dangling[p.slug] = tuple(dict.fromkeys(outside))

    @property
    def dangling(self) -> int:
        """Distinct curated targets, over all patterns, that name no pattern of the index."""
        return sum(len(v) for v in self._dangling.values())

    def dangling_of(self, slug: str) -> tuple[str, ...]:
        """The targets `slug` declares that name no pattern of the index, as written."""
        return self._dangling.get(slug, ())

    def __contains__(self, slug: str) -> bool:
        return slug in self._titles

    @property
    def edges(self) -> int:
        return sum(len(v) for v in self._out.values())

    def related(self, slug: str, direction: Literal["both", "outgoing", "incoming"] = "both") -> tuple[RelatedPattern, ...]:
        """Edges of `slug`, heaviest first (an unweighted edge counts as 0); outgoing before incoming on ties."""
        if slug not in self._titles:
            raise KeyError(slug)
        merged: dict[tuple[str, str], RelatedPattern] = {}
        if direction in ("both", "outgoing"):
            for e in self._out[slug]:
                merged[(e.target, e.kind)] = RelatedPattern(
                    e.target, self._titles[e.target], e.kind, e.kind, "outgoing", e.weight, e.description, e.resolved_by
                )
        if direction in ("both", "incoming"):
            for e in self._in[slug]:
                relation = INVERSE.get(e.kind, e.kind)
                mine = merged.get((e.source, relation))
                if mine is None:
                    merged[(e.source, relation)] = RelatedPattern(
                        e.source, self._titles[e.source], e.kind, relation, "incoming", e.weight, e.description, e.resolved_by
                    )
                else:
                    weights = [w for w in (mine.weight, e.weight) if w is not None]
                    merged[(e.source, relation)] = replace(
                        mine, direction="both", weight=max(weights) if weights else None, description=mine.description or e.description
                    )
        order = {"outgoing": 0, "both": 0, "incoming": 1}
        return tuple(sorted(merged.values(), key=lambda r: (-(r.weight or 0.0), order[r.direction], r.relation, r.slug)))


# Chunks that say what a pattern is about; the others are left out of its centroid: context labels (the same pattern
# in another audience's words), known uses (named organisations), the tension chunk (it carries the search keywords),
# and the cognitive-era and vitality notes (much alike across a library). Measured against the curated relationships
# (how many of each pattern's resolved neighbours are in its top 5 similar; lab script in the issue 28 note): the
# centroids of these chunks compared with each other find 90 on patterns/ (25 patterns), 50 on bmn (53 with
# neighbours) and 880 on commons-os (2,414), where the mean of all chunks against each pattern's best chunk found 76,
# 49 and 852. Best chunk against these chunks found 79, 49, 868; centroids of summary, problem, context, solution 88,
# 47, 857.
LEFT_OUT_OF_CENTROID = ("context-label", "known-uses", "tension", "cognitive-era", "vitality")
_CENTROID_BATCH = 8192  # chunk vectors read at once while the centroids are built
_centroids: dict[int, np.ndarray] = {}  # id(index) -> its pattern centroids, dropped with the index


def similar(
    index: SearchIndex, slug: str, k: int = 10, pattern_mask: np.ndarray | None = None, candidates: int = 300
) -> tuple[SimilarPattern, ...]:
    """Patterns nearest to `slug` by content (itself excluded), best first: the cosine between the two patterns'
    centroids (`pattern_centroids`), and for each the chunk of it closest to `slug`'s centroid.

    `pattern_mask` (bool per pattern row) restricts the candidates, as search filters do. `candidates` is kept for
    callers of the earlier chunk search; every pattern is a candidate.
    """
    row = index.slug_row.get(slug)
    if row is None:
        raise KeyError(slug)
    centroids = pattern_centroids(index)
    query = centroids[row]
    if k <= 0 or not query.any():
        return ()
    keep = np.any(centroids != 0.0, axis=1) if pattern_mask is None else pattern_mask & np.any(centroids != 0.0, axis=1)
    keep[row] = False
    scores = centroids @ query
    rows = np.flatnonzero(keep)
    ranked = rows[np.lexsort((rows, -scores[rows]))][:k]  # best first, ties by row
    out = []
    for p in ranked.tolist():
        own = _centroid_rows(index, p)
        closest = own[int(np.argmax(index.engine.chunk_similarities(query, own)))]
        out.append(
            SimilarPattern(index.patterns[p].slug, index.patterns[p].title, round(float(scores[p]), 6), index.chunks[int(closest)].id)
        )
    return tuple(out)


def pattern_centroids(index: SearchIndex) -> np.ndarray:
    """(patterns, dim) unit vectors: each pattern's mean chunk vector over the chunks not in LEFT_OUT_OF_CENTROID
    (over all its chunks when it has no other), zero for a pattern without chunks. Built once per opened index."""
    found = _centroids.get(id(index))
    if found is not None:
        return found
    kept = ~np.isin(np.asarray(index.chunks.roles, dtype=object), LEFT_OUT_OF_CENTROID)
    sums: np.ndarray | None = None
    counts = np.zeros(len(index.patterns), dtype=np.int64)
    for with_kept in (True, False):  # then every chunk of the patterns that had none kept
        chosen = kept if with_kept else ~kept & (counts[index.chunk_pattern] == 0)
        rows = np.flatnonzero(chosen)
        for start in range(0, len(rows), _CENTROID_BATCH):
            batch = rows[start : start + _CENTROID_BATCH]
            vectors = index.engine.chunk_vectors(batch).astype(np.float32)
            if sums is None:
                sums = np.zeros((len(index.patterns), vectors.shape[1]), dtype=np.float32)
            np.add.at(sums, index.chunk_pattern[batch], vectors)
        counts += np.bincount(index.chunk_pattern[rows], minlength=len(index.patterns))
    if sums is None:
        sums = np.zeros((len(index.patterns), 1), dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    centroids = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    _centroids[id(index)] = centroids
    weakref.finalize(index, _centroids.pop, id(index), None)
    return centroids


def _centroid_rows(index: SearchIndex, pattern_row: int) -> np.ndarray:
    """The chunk rows of a pattern that its centroid is made of."""
    rows = index.chunk_rows(pattern_row)
    roles = index.chunks.roles
    kept = rows[[roles[int(r)] not in LEFT_OUT_OF_CENTROID for r in rows]]
    return kept if len(kept) else rows
