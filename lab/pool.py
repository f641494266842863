"""Judgment pools: the union of the top k of several independent retrievers, for judges to grade.

Pooling (TREC style) keeps judgments from favouring the ranker under test: every pattern that any of
three different retrievers puts in its top 20 is shown to the judges, with no rank or score, in slug
order. The retrievers share no code with the ranker's fusion:

- ``fulltext``: bm25s over each pattern's whole text (title, aliases, summary, tension, keywords,
  context labels, body), English stop words, Snowball stemming;
- ``fields``: bm25s over the fields the libraries' own site search uses (title, aliases, keywords,
  summary), no stemming;
- ``dense``: all-MiniLM-L6-v2 over one text per pattern (title, summary and the head of the problem
  section), cosine;
- ``engine`` (optional, ``--index-dir``): the project's hybrid ranking, so the pool also holds what
  the ranker under test retrieves.

Filters of the query (domain, context) restrict every retriever before its cut.

    python -m lab.pool --library ../shared/corpora/commons-os \\
        --queries new-queries.jsonl --out pool.jsonl [--index-dir INDEX] [--depth 20]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.load.library import load_library
from rag.records.pattern import Pattern

POOL_DEPTH = 20
DENSE_HEAD_CHARS = 1200


def pattern_text(p: Pattern) -> str:
    parts = [p.title, " ".join(p.aliases), p.summary, p.tension, " ".join(p.keywords)]
    parts += [label for _, label in p.context_labels]
    parts += [f"{s.title}\n{s.text}" for s in p.sections]
    return "\n".join(x for x in parts if x)


def field_text(p: Pattern) -> str:
    return "\n".join(x for x in (p.title, " ".join(p.aliases), " ".join(p.keywords), p.summary) if x)


def dense_text(p: Pattern) -> str:
    problem = p.section("problem") or p.section("context")
    head = problem.text[:DENSE_HEAD_CHARS] if problem else ""
    return "\n".join(x for x in (p.title, p.summary, head) if x)


def _bm25(texts: Sequence[str], stem: bool) -> Callable[[str], np.ndarray]:
    import bm25s

    stemmer = None
    if stem:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25(k1=1.5, b=0.75)
    model.index(bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)

    def scores(query: str) -> np.ndarray:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[0]
        return np.asarray(model.get_scores(tokens), dtype=np.float32) if tokens else np.zeros(len(texts), np.float32)

    return scores


def allowed(patterns: Sequence[Pattern], filters: dict) -> np.ndarray:
    domain, context = (filters or {}).get("domain"), (filters or {}).get("context")
    keep = np.ones(len(patterns), dtype=bool)
    for i, p in enumerate(patterns):
        if domain and domain.lower() not in {d.lower() for d in p.domains}:
            keep[i] = False
        if context and context not in p.contexts:
            keep[i] = False
    return keep


def top(scores: np.ndarray, keep: np.ndarray, depth: int) -> list[int]:
    masked = np.where(keep, scores, -np.inf)
    order = np.argsort(-masked, kind="stable")[:depth]
    return [int(i) for i in order if np.isfinite(masked[i]) and masked[i] > 0]


def build_pool(
    patterns: Sequence[Pattern],
    queries: Sequence[dict],
    depth: int = POOL_DEPTH,
    index_dir: str | None = None,
    dense_cache: Path | None = None,
) -> list[dict]:
    from rag.embedding.minilm import MiniLMEncoder

    fulltext = _bm25([pattern_text(p) for p in patterns], stem=True)
    fields = _bm25([field_text(p) for p in patterns], stem=False)
    encoder = MiniLMEncoder()
    matrix = _pattern_vectors(encoder, patterns, dense_cache)
    qvecs = encoder.encode([q["query"] for q in queries])
    engine = _engine(index_dir) if index_dir else None
    slug_row = {p.slug: i for i, p in enumerate(patterns)}
    pools = []
    for q, qv in zip(queries, qvecs):
        keep = allowed(patterns, q.get("filters") or {})
        found: dict[int, list[str]] = {}
        runs = {
            "fulltext": top(fulltext(q["query"]), keep, depth),
            "fields": top(fields(q["query"]), keep, depth),
            "dense": top(matrix @ qv, keep, depth),
        }
        if engine is not None:
            runs["engine"] = [slug_row[s] for s in engine(q, depth) if s in slug_row]
        for name, rows in runs.items():
            for r in rows:
                found.setdefault(r, []).append(name)
        candidates = sorted(found, key=lambda r: patterns[r].slug)
        pools.append(
            {
                "qid": q["qid"],
                "kind": q.get("kind"),
                "query": q["query"],
                "filters": q.get("filters") or {},
                "candidates": [_candidate(patterns[r], found[r]) for r in candidates],
            }
        )
    return pools


def _pattern_vectors(encoder, patterns: Sequence[Pattern], cache: Path | None) -> np.ndarray:
    """One vector per pattern; cached in an .npz keyed by the slugs and texts' content hashes."""
    key = np.array([f"{p.slug}:{p.content_hash}" for p in patterns])
    if cache is not None and cache.exists():
        stored = np.load(cache)
        if stored["key"].shape == key.shape and (stored["key"] == key).all():
            return stored["vectors"]
    vectors = encoder.encode([dense_text(p) for p in patterns], progress=True)
    if cache is not None:
        np.savez(cache, key=key, vectors=vectors)
    return vectors


def _candidate(p: Pattern, retrievers: list[str]) -> dict:
    problem = p.section("problem")
    return {
        "slug": p.slug,
        "title": p.title,
        "aliases": list(p.aliases),
        "summary": p.summary[:600],
        "problem": (problem.text[:500] if problem else ""),
        "found_by": retrievers,
    }


def _engine(index_dir: str) -> Callable[[dict, int], list[str]]:
    from rag.embedding.minilm import MiniLMEncoder
    from rag.index.search_index import SearchIndex
    from rag.records.filters import Filters
    from rag.search.retriever import Retriever

    retriever = Retriever(SearchIndex.open(Path(index_dir)), MiniLMEncoder())

    def run(query: dict, depth: int) -> list[str]:
        f = query.get("filters") or {}
        hits = retriever.search(query["query"], depth, Filters(domain=f.get("domain"), context=f.get("context"))).hits
        return [h.slug for h in hits]

    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", required=True)
    parser.add_argument("--queries", required=True, help="JSONL: qid, kind, query, filters (relevant is ignored)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--index-dir", help="also pool the project's hybrid ranking over this index")
    parser.add_argument("--depth", type=int, default=POOL_DEPTH)
    parser.add_argument("--dense-cache", type=Path, help=".npz file keeping the per-pattern vectors between runs")
    args = parser.parse_args(argv)
    patterns = load_library(args.library).patterns
    queries = [json.loads(line) for line in Path(args.queries).read_text(encoding="utf-8").splitlines() if line.strip()]
    pools = build_pool(patterns, queries, args.depth, args.index_dir, args.dense_cache)
    with open(args.out, "w", encoding="utf-8") as out:
        for pool in pools:
            out.write(json.dumps(pool, ensure_ascii=False) + "\n")
    sizes = [len(p["candidates"]) for p in pools]
    print(f"{len(pools)} queries pooled, {sum(sizes)} candidates (mean {sum(sizes) / max(1, len(sizes)):.1f}) -> {args.out}")


if __name__ == "__main__":
    main()
