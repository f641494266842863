"""A synthetic library of unit vectors with the neighbourhood shape of real chunk embeddings.

No text is encoded. Every chunk vector is a weighted sum of independent random unit directions,
shared along a hierarchy, plus its own noise, then normalized:

    x = unit(a*common + b*domain + c*topic + d*pattern + e*noise),   a^2 + b^2 + c^2 + d^2 + e^2 = 1

so two chunks of one pattern have cosine about a^2+b^2+c^2+d^2, of one topic a^2+b^2+c^2, of one
domain a^2+b^2, and any two a^2 (the shared `common` direction reproduces the anisotropy of sentence
embeddings: unrelated MiniLM chunks have cosine ~0.1-0.2, not 0). A query is a pattern's shared part
plus stronger noise. The default weights give neighbour similarities close to those of
all-MiniLM-L6-v2 on commons-os (the bench reports both profiles side by side).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SyntheticSpec:
    patterns: int = 100_000
    min_chunks: int = 6  # chunks per pattern, uniform in [min_chunks, max_chunks]: mean 10
    max_chunks: int = 14
    domains: int = 50
    topics: int = 2_000
    dimension: int = 384
    common: float = 0.15  # squared weights; the chunk's own noise takes the rest
    domain: float = 0.15
    topic: float = 0.25
    pattern: float = 0.20
    query_noise: float = 1.5  # squared weight of a query's noise relative to its pattern's shared part
    seed: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Synthetic:
    vectors: np.ndarray  # (chunks, dimension) float32, unit rows
    chunk_pattern: np.ndarray  # int32: chunk row -> pattern
    pattern_domain: np.ndarray  # int32: pattern -> domain
    spec: SyntheticSpec

    def queries(self, n: int, seed: int, among: np.ndarray | None = None) -> np.ndarray:
        """`n` query vectors, each near a random pattern (of `among`, pattern rows, when given)."""
        return _queries(self.spec, n, seed, among)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _directions(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return _unit(rng.standard_normal((n, dim), dtype=np.float32))


def _shared(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pattern shared parts (unnormalized), pattern -> domain, topic -> domain, pattern -> topic)."""
    rng = np.random.default_rng(spec.seed)
    dim = spec.dimension
    common = _directions(rng, 1, dim)[0]
    domains = _directions(rng, spec.domains, dim)
    topics = _directions(rng, spec.topics, dim)
    topic_domain = rng.integers(0, spec.domains, spec.topics).astype(np.int32)
    pattern_topic = rng.integers(0, spec.topics, spec.patterns).astype(np.int32)
    shared = np.empty((spec.patterns, dim), dtype=np.float32)
    for start in range(0, spec.patterns, 50_000):
        t = pattern_topic[start : start + 50_000]
        shared[start : start + len(t)] = (
            np.sqrt(spec.common) * common
            + np.sqrt(spec.domain) * domains[topic_domain[t]]
            + np.sqrt(spec.topic) * topics[t]
            + np.sqrt(spec.pattern) * _directions(rng, len(t), dim)
        )
    return shared, topic_domain[pattern_topic], topic_domain, pattern_topic


def generate(spec: SyntheticSpec = SyntheticSpec()) -> Synthetic:
    shared, pattern_domain, _, _ = _shared(spec)
    rng = np.random.default_rng(spec.seed + 1)
    counts = rng.integers(spec.min_chunks, spec.max_chunks + 1, spec.patterns)
    chunk_pattern = np.repeat(np.arange(spec.patterns, dtype=np.int32), counts)
    noise = np.sqrt(max(0.0, 1.0 - spec.common - spec.domain - spec.topic - spec.pattern))
    vectors = np.empty((len(chunk_pattern), spec.dimension), dtype=np.float32)
    for start in range(0, len(chunk_pattern), 100_000):
        rows = chunk_pattern[start : start + 100_000]
        vectors[start : start + len(rows)] = _unit(shared[rows] + noise * _directions(rng, len(rows), spec.dimension))
    return Synthetic(vectors, chunk_pattern, pattern_domain.astype(np.int32), spec)


def _queries(spec: SyntheticSpec, n: int, seed: int, among: np.ndarray | None = None) -> np.ndarray:
    shared, _, _, _ = _shared(spec)
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, spec.patterns, n) if among is None else rng.choice(among, n)
    return _unit(shared[picked] + np.sqrt(spec.query_noise) * _directions(rng, n, spec.dimension))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (scores, rows) by inner product, best first, by blocks of rows (the oracle)."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_r = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), block):
        scores = queries @ vectors[start : start + block].T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(scores, part, axis=1)], axis=1)
        cand_r = np.concatenate([best_r, part + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(cand_s, order, axis=1), np.take_along_axis(cand_r, order, axis=1)
    return best_s, best_r


def similarity_profile(top_scores: np.ndarray) -> dict[str, float]:
    """Mean similarity of the 1st, 10th and 100th neighbour (as far as `top_scores` reaches)."""
    out = {}
    for rank in (1, 10, 100):
        if top_scores.shape[1] >= rank:
            out[f"top{rank}"] = round(float(top_scores[:, rank - 1].mean()), 4)
    return out
