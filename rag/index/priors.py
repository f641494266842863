"""Per-pattern priors computed once per build from the chunk vectors (stored as hub-prior.npy in the build).

The hub prior says how well a pattern matches everything: patterns with broad, generic texts come close
to every query, so their dense scores say less. The learned fusion (rag/search/learned.py) may correct
for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HUB_QUERIES = 512  # pseudo-queries (problem and context chunks of the library) per build
HUB_SEED = 7


def hub_prior(chunk_vectors: np.ndarray, chunk_pattern: np.ndarray, roles: Sequence[str], n_patterns: int,
              queries: int = HUB_QUERIES, seed: int = HUB_SEED) -> np.ndarray:
    """Per pattern: mean over pseudo-queries of its best chunk's cosine, z-scored over the library.

    The pseudo-queries are problem and context chunks of the library itself (situations in its own
    words); a pattern is not scored against its own chunks. Patterns whose chunks are close to every
    situation (broad, generic texts) get a high prior."""
    if n_patterns == 0 or len(chunk_vectors) == 0:
        return np.zeros(n_patterns, dtype=np.float32)
    pool = np.flatnonzero(np.isin(np.asarray(roles), ("problem", "context")))
    if len(pool) == 0:
        pool = np.arange(len(chunk_vectors))
    rng = np.random.default_rng(seed)
    picked = rng.choice(pool, size=min(queries, len(pool)), replace=False)
    order = np.argsort(chunk_pattern, kind="stable")
    cp = chunk_pattern[order]
    starts = np.searchsorted(cp, np.arange(n_patterns))
    present = np.searchsorted(cp, np.arange(n_patterns), "right") > starts
    total = np.zeros(n_patterns, dtype=np.float64)
    counts = np.zeros(n_patterns, dtype=np.float64)
    for block in np.array_split(picked, max(1, len(picked) // 64)):
        sims = chunk_vectors[order] @ chunk_vectors[block].T  # (chunks, block)
        best = np.full((n_patterns, len(block)), -1.0, dtype=np.float32)
        best[present] = np.maximum.reduceat(sims, starts[present], axis=0)
        own = chunk_pattern[block]
        best[own, np.arange(len(block))] = np.nan
        ok = ~np.isnan(best)
        total += np.where(ok, best, 0).sum(axis=1)
        counts += ok.sum(axis=1)
    mean = total / np.maximum(counts, 1)
    std = mean[present].std() if present.any() else 0.0
    z = (mean - mean[present].mean()) / std if std > 0 else np.zeros_like(mean)
    return np.where(present, z, 0.0).astype(np.float32)


CORE_ROLES = ("summary", "problem", "context", "solution")  # a pattern's centroid is of these chunks (the learned d_pattern)


def core_norms(chunk_vectors: np.ndarray, chunk_pattern: np.ndarray, roles: Sequence[str], n_patterns: int) -> np.ndarray:
    """Per pattern: the length of the sum of its core chunks' vectors (0 when it has none), so that a query's cosine
    with the pattern's core centroid is the sum of its cosines with those chunks divided by this."""
    out = np.zeros((n_patterns, chunk_vectors.shape[1] if chunk_vectors.ndim == 2 else 0), dtype=np.float64)
    core = np.isin(np.asarray(roles, dtype=object), CORE_ROLES)
    if core.any():
        np.add.at(out, np.asarray(chunk_pattern)[core], chunk_vectors[core])
    return np.linalg.norm(out, axis=1).astype(np.float32) if out.size else np.zeros(n_patterns, dtype=np.float32)
