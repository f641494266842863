"""The pattern graph: curated relationships read both ways, and "more like this" from the vectors.

`Graph` precomputes outgoing and incoming edges once per index. A target that is not a slug is resolved
as the loader does (by id, title or alias: rag/load/links.py), so indexes built before the loader
resolved names get the same edges; a target still outside the index is dangling: no edge, but counted
and listed per pattern, so `/related` can say why a pattern has none. `similar` averages a pattern's chunk vectors and searches the
vector index with that pattern's own chunks masked out, keeping each other pattern's best chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from rag.index.engine import Selection
from rag.index.search_index import SearchIndex
from rag.load.links import TargetResolver
from rag.records.filters import Filters
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
    score: float  # cosine between the pattern's mean vector and this pattern's best chunk
    chunk_id: str  # that best chunk


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


def similar(
    index: SearchIndex, slug: str, k: int = 10, pattern_mask: np.ndarray | None = None, candidates: int = 300
) -> tuple[SimilarPattern, ...]:
    """Patterns nearest to `slug`'s mean chunk vector (itself excluded), best chunk per pattern, best first.

    `pattern_mask` (bool per pattern row) restricts the candidates, as search filters do.
    """
    row = index.slug_row.get(slug)
    if row is None:
        raise KeyError(slug)
    own = index.chunk_rows(row)
    if not len(own) or k <= 0:
        return ()
    mean = index.engine.chunk_vectors(own).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        return ()
    query = (mean / norm).astype(np.float32)
    keep = index.chunk_pattern != row
    if pattern_mask is not None:
        keep &= pattern_mask[index.chunk_pattern]
    patterns_keep = np.ones(len(index.patterns), dtype=bool) if pattern_mask is None else pattern_mask.copy()
    patterns_keep[row] = False
    found = index.engine.dense(query[None, :], candidates, Selection(Filters(), patterns_keep, keep))[0]
    best: dict[int, tuple[float, int]] = {}
    for chunk_row, score in zip(found.rows.tolist(), found.scores.tolist()):
        pattern_row = int(index.chunk_pattern[chunk_row])
        if pattern_row not in best or score > best[pattern_row][0]:
            best[pattern_row] = (score, chunk_row)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
    return tuple(
        SimilarPattern(index.patterns[p].slug, index.patterns[p].title, round(float(score), 6), index.chunks[c].id)
        for p, (score, c) in ranked
    )
