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
