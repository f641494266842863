"""The product's own ranking metrics (rag/search/metrics.py) equal ranx's on random runs."""

from __future__ import annotations

import random

import pytest

from rag.search.metrics import at_k


def test_the_metrics_equal_ranx_on_random_runs():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(5)
    qrels, run, ours = {}, {}, []
    docs = [f"d{i}" for i in range(40)]
    for q in range(30):
        grades = {d: rng.choice((1, 2)) for d in rng.sample(docs, rng.randint(1, 6))}
        ranking = rng.sample(docs, 25)
        qid = f"q{q}"
        qrels[qid] = grades
        run[qid] = {d: float(len(ranking) - i) for i, d in enumerate(ranking)}
        ours.append(at_k(ranking, grades, 10))
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["ndcg@10", "recall@10", "mrr@10", "precision@1"], make_comparable=True)
    for metric in ("ndcg@10", "recall@10", "mrr@10", "precision@1"):
        assert sum(o[metric] for o in ours) / len(ours) == pytest.approx(theirs[metric], abs=1e-9), metric


def test_rag_eval_scores_and_tests_equal_ranx_compare():
    """The harness calls ranx's per-query evaluate and its tests only for the pairs it reports (ranx.compare tests
    every ordered pair); its means, per-query values and p-values are compare's, and `baseline` keeps only the pairs
    with that run. Two queries have no hit in some runs (the empty rankings ranx adds)."""
    ranx = pytest.importorskip("ranx")
    from rag.evaluation.harness import RunResult, evaluate
    from rag.evaluation.trec import ScoredDoc

    rng = random.Random(7)
    docs = [f"d{i}" for i in range(30)]
    judgments = {f"q{q:02d}": {d: rng.choice((1, 2)) for d in rng.sample(docs, rng.randint(1, 5))} for q in range(25)}
    runs = []
    for name in ("a", "b", "c"):
        hits = {}
        for q in judgments:
            if name != "a" and q in ("q03", "q11"):
                continue
            ranking = rng.sample(docs, 12)
            hits[q] = tuple(ScoredDoc(q, d, i + 1, 1.0 / (i + 1)) for i, d in enumerate(ranking))
        runs.append(RunResult(name, name, hits, 0.0))
    metrics = ("ndcg@10", "recall@10", "mrr@10")
    ours = evaluate(runs, judgments, metrics)
    qrels = ranx.Qrels(judgments)
    theirs = ranx.compare(
        qrels,
        [ranx.Run({q: {d.doc: 1.0 / d.rank for d in h} for q, h in r.docs.items()}, name=r.name) for r in runs],
        list(metrics),
        stat_test="student",
        max_p=0.05,
        make_comparable=True,
    )
    for r in runs:
        for m in metrics:
            assert ours.means[r.name][m] == pytest.approx(theirs.results[r.name][m], abs=1e-12)
    assert {(c.a, c.b) for c in ours.comparisons} == {("a", "b"), ("a", "c"), ("b", "c")}
    for c in ours.comparisons:
        expected = theirs.comparisons[frozenset([c.a, c.b])][c.metric]
        assert c.p_value == pytest.approx(float(expected["p_value"]), abs=1e-12) and c.significant == bool(expected["significant"])
    only = evaluate(runs, judgments, metrics, baseline="b")
    assert {(c.a, c.b) for c in only.comparisons} == {("a", "b"), ("b", "c")}
    assert only.per_query == ours.per_query and only.means == ours.means
