"""txtai on the same chunks and the same model: its build time, hybrid query latency and nDCG@10.

txtai (bench-only dependency) indexes exactly the chunk texts of one of our indexes with
`{"path": <the model>, "content": False, "hybrid": True}` (dense vectors + BM25, txtai's own defaults
otherwise). Its chunk hits become pattern hits by each pattern's best chunk, as our dense retriever
does, and are scored by the same ranx harness as ours. txtai has no filters without its content
store, so a dev query's filters are applied to its chunk hits (after its cut; ours filter before).

For a library whose vectors are already in our embedding cache, txtai can instead take them through
its `external` vectors method (same vectors, no encoding): a warm build, beside our warm build.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.timing import percentiles, time_ms
from rag.embedding.cache import EmbeddingCache, text_key
from rag.embedding.minilm import MiniLMEncoder, default_model_path
from rag.evaluation.harness import RunResult, evaluate, load_input, run_queries
from rag.evaluation.trec import ScoredDoc
from rag.search.filters import Filters
from rag.search.retriever import Retriever

log = logging.getLogger(__name__)

CANDIDATES = 300  # chunks asked of txtai per query, as our dense retriever asks of FAISS


def cached_transform(cache: EmbeddingCache, embedder: MiniLMEncoder) -> Callable[[Sequence[str]], np.ndarray]:
    """A txtai `external` transform: cached vectors for known texts, the model for the rest (never cached)."""

    def transform(data):
        texts = list(data)
        out = np.zeros((len(texts), cache.dimension), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            vector = cache.get(text_key(text))
            if vector is None:
                missing.append(i)
            else:
                out[i] = vector
        if missing:
            out[missing] = embedder.encode([texts[i] for i in missing])
        return out

    return transform


def config(transform: Callable | None = None) -> dict:
    base = {"content": False, "hybrid": True}
    if transform is None:
        return {"path": str(default_model_path()), **base}
    return {"method": "external", "transform": transform, **base}


def build(texts: Sequence[str], transform: Callable | None = None):
    """(txtai Embeddings, build seconds); the model is loaded and warmed before the clock starts."""
    from txtai import Embeddings

    embeddings = Embeddings(config(transform))
    if transform is None:
        embeddings.model.encode(list(texts[:32]))  # load the model's weights and run a first batch, untimed
    started = time.perf_counter()
    embeddings.index((row, text, None) for row, text in enumerate(texts))
    return embeddings, time.perf_counter() - started


def search_patterns(embeddings, chunk_slugs: Sequence[str], query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
    """txtai's chunk hits as patterns, each scored by its best chunk; `allowed` filters slugs."""
    best: dict[str, float] = {}
    for row, score in embeddings.search(query, CANDIDATES):
        slug = chunk_slugs[int(row)]
        if (allowed is None or slug in allowed) and score > best.get(slug, -np.inf):
            best[slug] = float(score)
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _allowed(retriever: Retriever, filters: Filters) -> set[str] | None:
    mask = retriever.masks.mask(filters)
    if mask is None:
        return None
    return {p.slug for p, keep in zip(retriever.index.patterns, mask) if keep}


def compare(
    retriever: Retriever,
    embeddings,
    txtai_seconds: float,
    our_stages: dict[str, float],
    texts: Sequence[str],
    dev: Path | None,
    k: int = 10,
) -> dict:
    """Build seconds, hybrid latency on `texts` (interleaved, ours then txtai) and nDCG@10 on `dev`.

    txtai is handed the chunk texts, so the like-for-like build is ours from chunks on: our encode,
    index and write stages (`our_stages` are our build's seconds by stage, with `total`)."""
    from_chunks = sum(our_stages.get(stage, 0.0) for stage in ("encode", "index", "write"))
    slugs = [c.slug for c in retriever.index.chunks]
    for text in texts[:5]:
        retriever.search(text, k)
        search_patterns(embeddings, slugs, text, k)
    ours, theirs = [], []
    for text in texts:
        ours.append(time_ms(lambda: retriever.search(text, k)))
        theirs.append(time_ms(lambda: search_patterns(embeddings, slugs, text, k)))
    result = {
        "chunks": len(slugs),
        "build_seconds": {"ours": round(from_chunks, 3), "ours_with_load_and_chunk": our_stages["total"], "txtai": round(txtai_seconds, 3)},
        "ratio_build_ours_to_txtai": round(from_chunks / txtai_seconds, 3) if txtai_seconds else None,
        "hybrid_ms": {"ours": percentiles(ours), "txtai": percentiles(theirs)},
    }
    p50_ours, p50_txtai = result["hybrid_ms"]["ours"]["p50"], result["hybrid_ms"]["txtai"]["p50"]
    result["speedup_p50_txtai_over_ours"] = round(p50_txtai / p50_ours, 3) if p50_ours else None
    if dev is not None:
        result["quality"] = quality(retriever, embeddings, slugs, dev)
    return result


def quality(retriever: Retriever, embeddings, slugs: Sequence[str], dev: Path, depth: int = 100) -> dict:
    """nDCG@10 (and the other harness metrics) of our hybrid and txtai's hybrid on one dev set."""
    data = load_input(dev, retriever, depth)
    ours = run_queries(retriever, data.queries, depth, "ours-hybrid")
    docs, times = {}, []
    for q in data.queries:
        allowed = _allowed(retriever, q.filters)
        started = time.perf_counter()
        hits = search_patterns(embeddings, slugs, q.text, depth, allowed)
        times.append((time.perf_counter() - started) * 1000)
        docs[q.qid] = tuple(ScoredDoc(q.qid, slug, rank, score) for rank, (slug, score) in enumerate(hits, start=1))
    theirs = RunResult("txtai-hybrid", "txtai-hybrid", docs, float(np.median(times)) if times else 0.0)
    scored = data.scored
    evaluation = evaluate([ours, theirs], {q: data.judgments[q] for q in scored})
    ndcg = [c for c in evaluation.comparisons if c.metric == "ndcg@10"][0]
    return {
        "dev": str(dev),
        "queries": len(scored),
        "means": {name: {m: round(v, 4) for m, v in means.items()} for name, means in evaluation.means.items()},
        "ndcg@10": {
            "ours": round(evaluation.means["ours-hybrid"]["ndcg@10"], 4),
            "txtai": round(evaluation.means["txtai-hybrid"]["ndcg@10"], 4),
        },
        "ndcg@10_p_value": ndcg.p_value,
        "filtered_queries": sum(q.filters.active for q in data.queries),
    }
