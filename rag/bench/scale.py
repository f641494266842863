"""Scale: a synthetic library of 100,000 patterns (about a million chunk vectors) in the large-library
vector index settings, measured against exact search.

For each candidate kind (IVF, HNSW) the build is timed, the search parameter (nprobe, efSearch) is
tuned on one set of queries to the smallest value reaching the recall target, and p50 and recall@10
are then measured on other queries, through `VectorIndex.search` as the retriever calls it. Memory is
the index's bytes on disk and the growth of this process's RSS while it is built, both per million
vectors. The kind picked is the one that meets the goals with the shortest build.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..vectors import VectorIndex, VectorSettings
from .synthetic import SyntheticSpec, exact_top, generate, similarity_profile
from .timing import percentiles, time_ms

log = logging.getLogger(__name__)

LADDER = {"ivf": (1, 2, 4, 8, 16, 32, 64, 128, 256), "hnsw": (16, 32, 64, 128, 256, 512)}
PARAM = {"ivf": "nprobe", "hnsw": "ef_search"}


@dataclass(frozen=True, slots=True)
class ScaleSettings:
    spec: SyntheticSpec = SyntheticSpec()
    kinds: tuple[str, ...] = ("ivf", "hnsw")
    nlist: int = 1024  # IVF cells; 4*sqrt(n) = 4,000 takes most of an hour to train on 2 cores
    m: int = 32
    ef_construction: int = 80
    tune_queries: int = 200
    eval_queries: int = 300
    recall_goal: float = 0.95
    p50_goal_ms: float = 20.0
    filter_share: float = 0.1  # a filter keeping this share of the domains, for the filtered figures

    def to_dict(self) -> dict:
        return asdict(self)


def _rss() -> int:
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k found (rows of `found` may hold -1 or fewer ids)."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)]))


def _search_all(index: VectorIndex, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        started = time.perf_counter()
        _, found = index.search(q, k, mask)
        times.append((time.perf_counter() - started) * 1000)
        rows[i, : len(found)] = found
    return rows, times


def _with(index: VectorIndex, kind: str, value: int) -> VectorIndex:
    return VectorIndex(index.index, VectorSettings(**{**index.settings.to_dict(), PARAM[kind]: value}))


def measure_kind(kind: str, vectors: np.ndarray, tune: tuple[np.ndarray, np.ndarray], evaluation: tuple[np.ndarray, np.ndarray], filtered: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], settings: ScaleSettings, workdir: Path) -> dict:
    before = _rss()
    started = time.perf_counter()
    index = VectorIndex.build(vectors, VectorSettings(kind=kind, nlist=settings.nlist, m=settings.m, ef_construction=settings.ef_construction))
    build_seconds = time.perf_counter() - started
    grown = _rss() - before
    path = workdir / f"scale-{kind}.faiss"
    index.save(path)
    disk = path.stat().st_size
    path.unlink()
    tune_q, tune_truth = tune
    sweep = []
    chosen = None
    for value in LADDER[kind]:
        found, times = _search_all(_with(index, kind, value), tune_q, 10)
        sweep.append({PARAM[kind]: value, "recall@10": round(recall_at(found, tune_truth), 4), "p50_ms": percentiles(times)["p50"]})
        if chosen is None and sweep[-1]["recall@10"] >= settings.recall_goal:
            chosen = value
            break
    if chosen is None:  # the target is out of reach on this ladder: report the largest value tried
        chosen = LADDER[kind][-1]
    tuned = _with(index, kind, chosen)
    eval_q, eval_truth = evaluation
    _search_all(tuned, eval_q[:20], 10)  # warm
    found, times = _search_all(tuned, eval_q, 10)
    _, times_300 = _search_all(tuned, eval_q[:100], 300)
    with_filter = {}
    for name, (mask, f_queries, f_truth) in filtered.items():
        f_found, f_times = _search_all(tuned, f_queries, 10, mask)
        with_filter[name] = {"share_of_vectors": round(float(mask.mean()), 4), "ms": percentiles(f_times), "recall@10": round(recall_at(f_found, f_truth), 4)}
    n = len(vectors)
    result = {
        "kind": kind,
        "settings": tuned.settings.to_dict(),
        "build_seconds": round(build_seconds, 2),
        "tuning": sweep,
        "ms": percentiles(times),
        "recall@10": round(recall_at(found, eval_truth), 4),
        "ms_k300": percentiles(times_300),
        "filtered": with_filter,
        "index_bytes": disk,
        "bytes_per_million_vectors": round(disk / n * 1e6),
        "rss_growth_bytes": grown,
        "rss_growth_per_million_vectors": round(grown / n * 1e6),
    }
    result["meets_goals"] = bool(result["ms"]["p50"] <= settings.p50_goal_ms and result["recall@10"] >= settings.recall_goal)
    del index, tuned
    gc.collect()
    log.info("scale %s: build %.0f s, p50 %.2f ms, recall@10 %.3f", kind, build_seconds, result["ms"]["p50"], result["recall@10"])
    return result


def measure(settings: ScaleSettings, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = generate(settings.spec)
    generated = time.perf_counter() - started
    vectors = data.vectors
    tune_q = data.queries(settings.tune_queries, seed=settings.spec.seed + 100)
    eval_q = data.queries(settings.eval_queries, seed=settings.spec.seed + 200)
    started = time.perf_counter()
    _, tune_truth = exact_top(vectors, tune_q, 10)
    eval_scores, eval_truth = exact_top(vectors, eval_q, 100)
    keep_domains = max(1, round(settings.spec.domains * settings.filter_share))
    mask = data.pattern_domain[data.chunk_pattern] < keep_domains
    allowed = np.flatnonzero(mask)
    inside_q = data.queries(settings.eval_queries, seed=settings.spec.seed + 300, among=np.flatnonzero(data.pattern_domain < keep_domains))
    filtered = {}
    for name, queries in (("queries_inside_filter", inside_q), ("queries_anywhere", eval_q)):
        _, local = exact_top(vectors[allowed], queries, 10)
        filtered[name] = (mask, queries, allowed[local])
    exact_seconds = time.perf_counter() - started
    exact_ms = percentiles([time_ms(lambda: exact_top(vectors, eval_q[i : i + 1], 10)) for i in range(5)])
    kinds = {}
    for kind in settings.kinds:
        kinds[kind] = measure_kind(kind, vectors, (tune_q, tune_truth), (eval_q, eval_truth[:, :10]), filtered, settings, workdir)
    meeting = [k for k, r in kinds.items() if r["meets_goals"]]
    picked = min(meeting, key=lambda k: kinds[k]["build_seconds"]) if meeting else max(kinds, key=lambda k: kinds[k]["recall@10"]) if kinds else None
    return {
        "patterns": settings.spec.patterns,
        "vectors": int(len(vectors)),
        "dimension": settings.spec.dimension,
        "spec": settings.spec.to_dict(),
        "generate_seconds": round(generated, 2),
        "exact_seconds_for_truth": round(exact_seconds, 2),
        "exact_search_ms": exact_ms,
        "query_similarity_profile": similarity_profile(eval_scores),
        "kinds": kinds,
        "picked": picked,
        "filter": f"domain among the first {keep_domains} of {settings.spec.domains}; queries near a pattern inside the filter, or near any pattern",
        "pick_rule": f"of the kinds with p50 <= {settings.p50_goal_ms} ms and recall@10 >= {settings.recall_goal}, the fastest to build",
    }
