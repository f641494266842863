"""In-process query latency: dense, lexical and hybrid, with and without filters, beside the floor.

The floor of a query is the serving query encoder's `encode_query` of its text alone (numpy on a CPU; torch's
floor is timed beside it on the same queries). Every query is timed for the
floor and for each retriever and filter mode in turn, so slow drift of the machine affects all of
them alike and the ratio of hybrid p50 to floor p50 stays fair.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bench.timing import percentiles, time_ms
from rag.embedding.encoder import Encoder
from rag.evaluation.harness import variant
from rag.search.filters import Filters
from rag.search.retriever import Retriever

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("dense", "lexical", "hybrid")
FILTER_MODES: tuple[str, ...] = ("none", "domain", "context")


def filter_plan(retriever: Retriever, n: int, mode: str, top_domains: int = 10) -> list[Filters]:
    """`n` filters: none; the index's `top_domains` most common domains in turn; or every context in turn."""
    facets = retriever.facets
    if mode == "none":
        return [Filters()] * n
    if mode == "domain":
        values = [d for d, _ in facets.domains[:top_domains]]
        return [Filters(domain=values[i % len(values)]) for i in range(n)] if values else []
    if mode == "context":
        values = [c for c, _ in facets.contexts]
        return [Filters(context=values[i % len(values)]) for i in range(n)] if values else []
    raise ValueError(f"unknown filter mode {mode!r}; choose from {', '.join(FILTER_MODES)}")


def measure(
    retriever: Retriever,
    texts: Sequence[str],
    k: int = 10,
    variants: Sequence[str] = VARIANTS,
    modes: Sequence[str] = FILTER_MODES,
    warmup: int = 10,
    other_floor: Encoder | None = None,
) -> dict:
    """Latency percentiles (ms) per retriever and filter mode over `texts`, and of the floor; with `other_floor`
    (another encoder of the same model, e.g. torch beside numpy), its floor too, timed on the same queries in turn."""
    retrievers = {name: variant(retriever, name) for name in variants}
    plans = {mode: filter_plan(retriever, len(texts), mode) for mode in modes}
    plans = {mode: plan for mode, plan in plans.items() if plan}
    other: list[float] = []
    for text in texts[:warmup]:
        retriever.embedder.encode_query(text)
        if other_floor is not None:
            other_floor.encode_query(text)
        for r in retrievers.values():
            r.search(text, k)
    floor: list[float] = []
    samples: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in plans} for name in retrievers}
    stages: dict[str, list[float]] = {}  # the retriever's own timings of each stage, unfiltered hybrid
    for i, text in enumerate(texts):
        floor.append(time_ms(lambda: retriever.embedder.encode_query(text)))
        if other_floor is not None:
            other.append(time_ms(lambda: other_floor.encode_query(text)))
        for name, r in retrievers.items():
            for mode, plan in plans.items():
                started = time.perf_counter()
                results = r.search(text, k, plan[i])
                samples[name][mode].append((time.perf_counter() - started) * 1000)
                if name == "hybrid" and mode == "none":
                    for stage, ms in results.timings_ms.items():
                        stages.setdefault(stage, []).append(ms)
    result = {
        "queries": len(texts),
        "k": k,
        "filters": {mode: sorted({f.domain or f.context for f in plan if f.active}) for mode, plan in plans.items()},
        "floor_ms": percentiles(floor),
        "ms": {name: {mode: percentiles(values) for mode, values in by_mode.items()} for name, by_mode in samples.items()},
        "hybrid_stage_p50_ms": {stage: percentiles(values)["p50"] for stage, values in stages.items()},
    }
    if "hybrid" in samples and "none" in plans and floor:
        result["ratio_hybrid_p50_to_floor"] = round(result["ms"]["hybrid"]["none"]["p50"] / result["floor_ms"]["p50"], 3)
    if other:
        result["other_floor"] = {"runtime": getattr(other_floor, "runtime", "?"), "ms": percentiles(other)}
        if "hybrid" in samples and "none" in plans:
            result["ratio_hybrid_p50_to_other_floor"] = round(result["ms"]["hybrid"]["none"]["p50"] / result["other_floor"]["ms"]["p50"], 3)
    return result
