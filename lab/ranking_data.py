"""Candidate features of judged query sets, extracted once and cached, for the ranking study (lab/ranking.py) and fits.

    python -m lab.ranking_data --set bmn:INDEX:eval/dev/bmn.jsonl ... --out /tmp/ranking-data

For every query: the candidates of the learned fusion (the union of the signals' runs) with every feature of
rag/search/learned.py computed (whatever the shipped ranker weighs), the pinned rows, each signal's ranking, the rows of
the shipped default and of reciprocal rank fusion, and the grades. One .npz per set (`<name>.npz`) plus its JSON meta.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.common import parser
from rag.evaluation.harness import parse_queries
from rag.records.request import SearchRequest
from rag.search.fusion import ranked, reciprocal_rank_fusion
from rag.search.learned import FEATURES


@dataclass
class Query:
    set: str
    qid: str
    kind: str
    rows: np.ndarray  # candidate pattern rows
    X: np.ndarray  # (len(rows), len(FEATURES))
    pinned: list[int]
    runs: dict[str, list[int]]  # each signal's rows, best first
    default: list[int]  # the shipped ranking (rows)
    rrf2: list[int]  # reciprocal rank fusion of full-text BM25 and section-level dense (the "30-line fusion")
    grades: dict[int, int]  # row -> grade (judged relevant only)
    slugs: dict[int, str]  # row -> slug, for the judged and candidate rows
    filtered: bool


def extract(name: str, index_dir: Path, queries_path: Path, embedder) -> list[Query]:
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    index = SearchIndex.open(index_dir)
    full = Retriever(index, embedder, features=frozenset(FEATURES))
    shipped = Retriever(index, embedder)
    queries, problems, _ = parse_queries(queries_path)
    if problems and any(p.severity == "error" for p in problems):
        raise SystemExit(f"{queries_path}: {problems[0]}")
    out = []
    for q in queries:
        prepared = full.encode([full.prepare(SearchRequest(q.text, 100, 0, q.filters))])[0]
        runs = full.signal_runs(prepared)
        fused, pinned = full.fuse(runs)
        rows, X = full.candidate_features(prepared, runs, fused)
        default = [row for row in shipped.rank(prepared).order]
        rrf2 = [
            r for r, _ in ranked(reciprocal_rank_fusion({s: runs[s].rows[:100].tolist() for s in ("dense", "fulltext") if s in runs}, k=60))
        ]
        grades = {index.slug_row[s]: g for s, g in q.relevant.items() if s in index.slug_row and g > 0}
        slugs = {int(r): index.patterns[int(r)].slug for r in set(rows.tolist()) | set(grades)}
        out.append(
            Query(
                name,
                q.qid,
                q.kind,
                rows,
                X,
                pinned,
                {s: r.rows.tolist() for s, r in runs.items()},
                default,
                rrf2,
                grades,
                slugs,
                q.filters.active,
            )
        )
    return out


def save(queries: list[Query], path: Path) -> None:
    arrays = {f"X{i}": q.X for i, q in enumerate(queries)} | {f"rows{i}": q.rows for i, q in enumerate(queries)}
    np.savez_compressed(path.with_suffix(".npz"), **arrays)
    meta = [
        {k: getattr(q, k) for k in ("set", "qid", "kind", "pinned", "runs", "default", "rrf2", "filtered")}
        | {"grades": {str(r): g for r, g in q.grades.items()}, "slugs": {str(r): s for r, s in q.slugs.items()}}
        for q in queries
    ]
    path.with_suffix(".json").write_text(json.dumps({"features": list(FEATURES), "queries": meta}) + "\n", encoding="utf-8")


def load(path: Path) -> list[Query]:
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    if meta["features"] != list(FEATURES):
        raise SystemExit(f"{path}: extracted with other features; extract again")
    arrays = np.load(path.with_suffix(".npz"))
    return [
        Query(
            m["set"],
            m["qid"],
            m["kind"],
            arrays[f"rows{i}"],
            arrays[f"X{i}"],
            m["pinned"],
            m["runs"],
            m["default"],
            m["rrf2"],
            {int(r): g for r, g in m["grades"].items()},
            {int(r): s for r, s in m["slugs"].items()},
            m["filtered"],
        )
        for i, m in enumerate(meta["queries"])
    ]


def main(argv: list[str] | None = None) -> None:
    from rag.embedding.minilm import MiniLMEncoder

    options = parser(__doc__)
    options.add_argument("--out", type=Path, required=True, help="folder for <set>.npz and <set>.json")
    args = options.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = MiniLMEncoder()
    for judged in args.set:
        started = time.perf_counter()
        queries = extract(judged.name, judged.index_dir, judged.queries, embedder)
        save(queries, args.out / judged.name)
        print(f"{judged.name}: {len(queries)} queries in {time.perf_counter() - started:.0f} s -> {args.out / judged.name}.npz")


if __name__ == "__main__":
    main()
