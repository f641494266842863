"""Rank fusion as pure functions over ranked lists (no index, no model, no state).

- Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009):
      score(d) = sum_r  w_r / (k + rank_r(d)),   rank_r(d) starting at `rank_base` (1 by default);
  a document missing from a list contributes nothing for that list.
- Convex combination of normalized scores (as in ranx's `wsum` with min-max normalization):
      score(d) = sum_r  w_r * norm_r(s_r(d)),   norm = (s - min) / (max - min) over that list;
  a document missing from a list contributes 0 for that list.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

Doc = TypeVar("Doc", bound=Hashable)  # any document id: a slug, a row number


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Doc]],
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
    rank_base: int = 1,
) -> dict[Doc, float]:
    """Fused scores of every document in any ranking. `rankings[name]` is best-first."""
    fused: dict[Doc, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 0.0)
        if weight == 0.0:
            continue
        for position, doc in enumerate(ranking):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + position + rank_base)
    return fused


def min_max(scores: Mapping[Doc, float]) -> dict[Doc, float]:
    """Scale to [0, 1]; a list whose scores are all equal maps to 1.0 (every member matched equally)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return {doc: 1.0 for doc in scores}
    return {doc: (value - low) / (high - low) for doc, value in scores.items()}


def convex_combination(scores: Mapping[str, Mapping[Doc, float]], weights: Mapping[str, float] | None = None) -> dict[Doc, float]:
    """Weighted sum of min-max normalized scores."""
    fused: dict[Doc, float] = {}
    for name, raw in scores.items():
        weight = 1.0 if weights is None else weights.get(name, 0.0)
        if weight == 0.0:
            continue
        for doc, value in min_max(raw).items():
            fused[doc] = fused.get(doc, 0.0) + weight * value
    return fused


def ranked(fused: Mapping[Doc, float]) -> list[tuple[Doc, float]]:
    """Best first; ties broken by id so results are deterministic."""
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
