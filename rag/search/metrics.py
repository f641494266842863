"""Ranking metrics computed in the product's own loops (`rag adapt`'s validation, `rag fit`'s and the lab's fitting),
where ranx's per-call overhead would dominate. The same definitions as ranx (linear gain nDCG, reciprocal rank, recall
and precision at a cutoff); tests/unit/test_metrics.py checks them against ranx on random runs."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains in rank order (linear gain, log2(rank + 1) discount)."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ideal_dcg(grades: Mapping[Hashable, float], k: int) -> float:
    return dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])


def at_k(ranking: Sequence[Hashable], grades: Mapping[Hashable, float], k: int = 10) -> dict[str, float]:
    """nDCG@k, recall@k, MRR@k and precision@1 of one ranking against graded judgments (grade > 0 is relevant)."""
    gains = [grades.get(doc, 0) for doc in ranking[:k]]
    relevant = sum(1 for g in grades.values() if g > 0)
    ideal = ideal_dcg(grades, k)
    first = next((i for i, g in enumerate(gains) if g > 0), None)
    return {
        "ndcg@10" if k == 10 else f"ndcg@{k}": dcg(gains) / ideal if ideal > 0 else 0.0,
        "recall@10" if k == 10 else f"recall@{k}": sum(1 for g in gains if g > 0) / relevant if relevant else 0.0,
        "mrr@10" if k == 10 else f"mrr@{k}": 1.0 / (first + 1) if first is not None else 0.0,
        "precision@1": 1.0 if gains and gains[0] > 0 else 0.0,
    }
