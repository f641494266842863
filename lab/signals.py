"""Each signal alone, and plain reference signals beside them, on the judged dev sets (issue 12: "measure
each signal alone ... and know which one carries what before fitting any weights").

    python -m lab.signals --set bmn:INDEX:eval/dev/bmn.jsonl --set commons-os:INDEX:eval/dev/commons-os.jsonl \\
        --report eval/signals.md

Rows: the project's own signals alone (dense, full-text BM25, keyword BM25, names) and plain references
built here from the same patterns: bm25s over each pattern's whole text (title, aliases, summary, tension,
keywords, context labels, sections; English stop words, k1 1.5), with and without Snowball stemming and
with and without the context labels; and a plain best-chunk MiniLM (the index's own vectors, no role
weights, no support). Filters apply before every cut. Metrics from ranx through the harness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lab.common import command, markdown, parser, write_report
from rag.config import RetrieverSettings
from rag.evaluation.harness import RunResult, evaluate, load_input, run_queries
from rag.evaluation.trec import ScoredDoc
from rag.records.pattern import Pattern
from rag.search.retriever import Retriever

DEPTH = 100
OWN = {
    "dense alone (project)": {"dense": 1.0},
    "full-text BM25 alone (project, stemmed)": {"fulltext": 1.0},
    "keyword BM25 alone (project)": {"keywords": 1.0},
    "names alone (project)": {"names": 1.0},
    "hybrid (project default)": None,
}
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def whole_text(p: Pattern, labels: bool = True) -> str:
    parts = [p.title, " ".join(p.aliases), p.summary, p.tension, " ".join(p.keywords)]
    if labels:
        parts += [label for _, label in p.context_labels]
    parts += [f"{s.title}\n{s.text}" for s in p.sections]
    return "\n".join(x for x in parts if x)


def plain_bm25(patterns: Sequence[Pattern], stem: bool, labels: bool) -> Callable[[str], np.ndarray]:
    import bm25s

    stemmer = None
    if stem:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25(k1=1.5, b=0.75)
    model.index(
        bm25s.tokenize([whole_text(p, labels) for p in patterns], stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )

    def scores(query: str) -> np.ndarray:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[0]
        return np.asarray(model.get_scores(tokens), dtype=np.float32) if tokens else np.zeros(len(patterns), np.float32)

    return scores


def _run(name: str, queries, retriever: Retriever, score: Callable[[object], np.ndarray]) -> RunResult:
    index = retriever.index
    docs = {}
    for q in queries:
        scores = score(q)
        mask = retriever.masks.mask(q.filters)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[:DEPTH]
        docs[q.qid] = tuple(
            ScoredDoc(q.qid, index.patterns[r].slug, n, float(scores[r]))
            for n, r in enumerate(order, start=1)
            if np.isfinite(scores[r]) and scores[r] > 0
        )
    return RunResult(name, name.split(" ")[0], docs, 0.0)


def measure(sets: Sequence[tuple[str, Path, Path]]) -> dict:
    from rag.embedding.minilm import MiniLMEncoder
    from rag.index.search_index import SearchIndex

    embedder = MiniLMEncoder()
    out: dict = {}
    for name, index_dir, path in sets:
        index = SearchIndex.open(index_dir)
        base = Retriever(index, embedder)
        data = load_input(path, base, DEPTH)
        queries = [q for q in data.queries if q.qid in set(data.scored)]
        runs = []
        for label, weights in OWN.items():
            retriever = (
                base
                if weights is None
                else Retriever(
                    index,
                    embedder,
                    RetrieverSettings().with_(
                        weights=weights, fusion="convex", name_pin=2.0 if "names" not in weights else RetrieverSettings().name_pin
                    ),
                )
            )
            runs.append(run_queries(retriever, queries, DEPTH, label))
        for stem in (False, True):
            for labels in (True, False):
                fn = plain_bm25(index.patterns, stem, labels)
                label = f"plain bm25s whole text ({'stemmed' if stem else 'no stemming'}, {'with' if labels else 'without'} context labels)"
                runs.append(_run(label, queries, base, lambda q, fn=fn: fn(q.text)))
        vectors = index.engine.chunk_vectors(np.arange(len(index.chunks)))
        qvecs = dict(zip([q.qid for q in queries], embedder.encode([q.text for q in queries])))

        def best_chunk(q) -> np.ndarray:
            sims = vectors @ qvecs[q.qid]
            best = np.full(len(index.patterns), -np.inf, dtype=np.float32)
            np.maximum.at(best, index.chunk_pattern, sims)
            return best

        runs.append(_run("plain best-chunk MiniLM", queries, base, best_chunk))
        evaluation = evaluate(runs, data.judgments, METRICS)
        out[name] = {"queries": len(queries), "runs": evaluation.means}
    return out


def report(result: dict, command: str) -> str:
    lines = [__doc__.split("\n\n")[2].replace("\n", " "), ""]
    for name, data in result.items():
        lines += [f"## {name} ({data['queries']} queries)", "", "| run | nDCG@10 | R@10 | R@100 | MRR@10 |", "|---|---:|---:|---:|---:|"]
        for run, m in data["runs"].items():
            lines.append(f"| {run} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} | {m['recall@100']:.3f} | {m['mrr@10']:.3f} |")
        lines.append("")
    return markdown("Each signal alone", command, lines)


def main(argv: Sequence[str] | None = None) -> None:
    options = parser(__doc__)
    options.add_argument("--report", type=Path)
    args = options.parse_args(argv)
    result = measure([(s.name, s.index_dir, s.queries) for s in args.set])
    text = report(result, command("lab.signals", args.set))
    print(text)
    if args.report:
        write_report(args.report, text, result)


if __name__ == "__main__":
    main()
