"""Validation of an adaptation: dense retrieval of held-out patterns, and of judged queries when given.

Held-out: each held-out pattern's Problem and Context sections are queries whose one relevant document is that
pattern's summary, among the summaries of every pattern of the library (the held-out patterns' pairs are never
trained on). Judged queries (`rag eval`'s JSONL) rank patterns by their best chunk's cosine. Metrics: nDCG@10
(graded, linear gains, as ranx) and MRR@10.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.adapt.pairs import _text
from rag.errors import InputError
from rag.records.pattern import Pattern
from rag.search.metrics import at_k

CUTOFF = 10
Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalized rows


@dataclass(frozen=True, slots=True)
class Judged:
    query: str
    relevant: dict[str, int]  # slug -> grade


def ndcg_mrr(ranked: Sequence[Sequence[str]], judged: Sequence[dict[str, int]], k: int = CUTOFF) -> dict[str, float]:
    """Mean nDCG@k and MRR@k over queries (a query with no relevant slug scores 0)."""
    ndcg = mrr = 0.0
    for order, relevant in zip(ranked, judged):
        scores = at_k(order, relevant, k)
        ndcg += scores[f"ndcg@{k}"]
        mrr += scores[f"mrr@{k}"]
    n = max(1, len(judged))
    return {"ndcg@10": round(ndcg / n, 4), "mrr@10": round(mrr / n, 4), "queries": len(judged)}


def held_out_queries(held: Sequence[Pattern]) -> list[Judged]:
    return [Judged(text, {p.slug: 1}) for p in held for text in (_text(p, "problem"), _text(p, "context")) if text]


def held_out_score(encode: Encode, patterns: Sequence[Pattern], held: Sequence[Pattern]) -> dict[str, float]:
    queries = held_out_queries(held)
    docs = [p for p in patterns if p.summary.strip()]
    if not queries or not docs:
        return ndcg_mrr([], [])
    sims = encode([q.query for q in queries]) @ encode([p.summary for p in docs]).T
    ranked = [[docs[i].slug for i in np.argsort(-row, kind="stable")[:CUTOFF]] for row in sims]
    return ndcg_mrr(ranked, [q.relevant for q in queries])


def read_judged(path: Path) -> list[Judged]:
    """`rag eval` JSONL (`query`, `relevant`); InputError naming the file and line on anything else."""
    out: list[Judged] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}", field="eval") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(Judged(str(data["query"]), {str(k): int(v) for k, v in data["relevant"].items()}))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path} line {number}: not a judged query ({type(exc).__name__}: {exc})", field="eval") from None
    return out


def judged_score(encode: Encode, chunk_slugs: Sequence[str], chunk_texts: Sequence[str], queries: Sequence[Judged]) -> dict[str, float]:
    """Patterns ranked by their best chunk's cosine to each query."""
    if not queries or not chunk_texts:
        return ndcg_mrr([], [])
    sims = encode([q.query for q in queries]) @ encode(list(chunk_texts)).T
    slugs = sorted(set(chunk_slugs))
    column = {s: i for i, s in enumerate(slugs)}
    owner = np.array([column[s] for s in chunk_slugs])
    best = np.full((len(queries), len(slugs)), -np.inf, dtype=np.float32)
    for j in range(len(slugs)):
        best[:, j] = sims[:, owner == j].max(axis=1)
    ranked = [[slugs[i] for i in np.argsort(-row, kind="stable")[:CUTOFF]] for row in best]
    return ndcg_mrr(ranked, [q.relevant for q in queries])
