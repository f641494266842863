"""Candidate features of judged query sets, extracted once and cached, for the ranking study (lab/ranking.py) and fits.

    python -m lab.ranking_data --set bmn:INDEX:eval/dev/bmn.jsonl ... --out /tmp/ranking-data

For every query: the candidates of the learned fusion (the union of the signals' runs) with every feature of
rag/search/learned.py computed (whatever the shipped ranker weighs), the pinned rows, each signal's ranking, the rows of
the shipped default and of reciprocal rank fusion, and the grades. One .npz per set (`<name>.npz`) plus its JSON meta;
with --no-answer, the queries without an answer on each index (`<index folder>-none`, the calibration's negatives).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from lab.common import parser
from rag.evaluation import fit
from rag.evaluation.fit import FitQuery
from rag.evaluation.harness import parse_queries
from rag.records.request import SearchRequest
from rag.search.fusion import ranked, reciprocal_rank_fusion
from rag.search.learned import FEATURES


@dataclass
class Query(FitQuery):
    """A FitQuery with what the report compares against: each signal's ranking, the shipped default's and RRF's."""

    runs: dict[str, list[int]] = field(default_factory=dict)  # each signal's rows, best first
    default: list[int] = field(default_factory=list)  # the shipped ranking (rows)
    rrf: list[int] = field(default_factory=list)  # fusion="rrf": reciprocal rank fusion of the four signals
    rrf2: list[int] = field(default_factory=list)  # reciprocal rank fusion of full-text BM25 and section-level dense
    slugs: dict[int, str] = field(default_factory=dict)  # row -> slug of the judged and candidate rows


def extract(name: str, index_dir: Path, queries_path: Path, embedder, answered: bool = True) -> list[Query]:
    from rag.config import RetrieverSettings
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    index = SearchIndex.open(index_dir)
    full = Retriever(index, embedder, features=frozenset(FEATURES))
    shipped = Retriever(index, embedder)
    rrf = Retriever(index, embedder, RetrieverSettings(fusion="rrf"))
    queries, problems, _ = parse_queries(queries_path)
    if any(p.severity == "error" for p in problems):
        raise SystemExit(f"{queries_path}: {problems[0]}")
    base = fit.extract(name, full, queries, answered)
    out = []
    for q, b in zip(queries, base):
        prepared = full.encode([full.prepare(SearchRequest(q.text, 100, 0, q.filters))])[0]
        runs = full.signal_runs(prepared)
        two = {s: runs[s].rows[:100].tolist() for s in ("dense", "fulltext") if s in runs}
        out.append(
            Query(
                **{f.name: getattr(b, f.name) for f in fields(FitQuery)},
                runs={s: r.rows.tolist() for s, r in runs.items()},
                default=shipped.rank(prepared).order,
                rrf=rrf.rank(prepared).order,
                rrf2=[r for r, _ in ranked(reciprocal_rank_fusion(two, k=60))],
                slugs={int(r): index.patterns[int(r)].slug for r in set(b.rows.tolist()) | set(b.grades)},
            )
        )
    return out


SCALARS = ("set", "qid", "kind", "pinned", "n_patterns", "answered", "words", "runs", "default", "rrf", "rrf2")


def save(queries: list[Query], path: Path) -> None:
    arrays = {f"X{i}": q.X for i, q in enumerate(queries)} | {f"rows{i}": q.rows for i, q in enumerate(queries)}
    arrays |= {f"dense{i}": q.dense for i, q in enumerate(queries)}
    np.savez_compressed(path.with_suffix(".npz"), **arrays)
    meta = [
        {k: getattr(q, k) for k in SCALARS}
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
            **{k: m[k] for k in SCALARS},
            rows=arrays[f"rows{i}"],
            X=arrays[f"X{i}"],
            dense=arrays[f"dense{i}"],
            grades={int(r): g for r, g in m["grades"].items()},
            slugs={int(r): s for r, s in m["slugs"].items()},
        )
        for i, m in enumerate(meta["queries"])
    ]


def main(argv: list[str] | None = None) -> None:
    from rag.embedding.minilm import MiniLMEncoder

    options = parser(__doc__)
    options.add_argument("--out", type=Path, required=True, help="folder for <set>.npz and <set>.json")
    options.add_argument("--no-answer", type=Path, help="queries with no answer: extracted on each set's index as <set>-none")
    args = options.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = MiniLMEncoder()
    for judged in args.set:
        started = time.perf_counter()
        queries = extract(judged.name, judged.index_dir, judged.queries, embedder)
        save(queries, args.out / judged.name)
        print(f"{judged.name}: {len(queries)} queries in {time.perf_counter() - started:.0f} s -> {args.out / judged.name}.npz")
        if args.no_answer and not (args.out / f"{judged.index_dir.name}-none.npz").exists():
            none = extract(f"{judged.index_dir.name}-none", judged.index_dir, args.no_answer, embedder, answered=False)
            save(none, args.out / f"{judged.index_dir.name}-none")


if __name__ == "__main__":
    main()
