"""Issue 27: one score (relevance never rises down a list), the calibration's fit, and `rag fit` on a library whose
judged queries favour one signal (it learns it, stores it, serves with it, --reset removes it) or do not (refused)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli.app import app
from rag.config import BuildSettings
from rag.embedding.fake import FakeEncoder
from rag.evaluation.fit import Example, calibration_figures, fit_calibration, relevances
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.index.store import FIT, current_build, read_manifest
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.search.calibration import FEATURES, Calibration
from rag.search.retriever import Retriever
from support import front_matter, write_pattern

runner = CliRunner()
QUERIES = [
    "stock nobody ordered",
    "how do members decide",
    "paying suppliers late",
    "open the books to staff",
    "member owned shop",
    "too much work at once",
    "checklists",
    "xyzzy plugh",
    "the",
    "shared kitchen",
]


@pytest.mark.parametrize("query", QUERIES)
def test_relevance_never_rises_down_any_result_list(fake_retriever, query):
    for request in (
        SearchRequest(query, 30),
        SearchRequest(query, 20, 10),
        SearchRequest(query, 30, group_duplicates=True),
        SearchRequest(query, 30, filters=Filters(context="activist")),
    ):
        hits = fake_retriever.search(request).hits
        relevance = [h.relevance for h in hits]
        assert relevance == sorted(relevance, reverse=True), (request, relevance)
        assert all(0.0 <= r <= 1.0 for r in relevance)


def test_a_pinned_hit_keeps_the_pinned_relevance_and_nothing_below_it_exceeds_it():
    calibration = Calibration({name: (2.0 if name == "score" else 0.0) for name in FEATURES}, 0.0, 0.9, 0.5)
    relevance = calibration.relevance([0.1, 3.0, 2.0], [True, False, False], np.zeros(5))  # the name match ranks first
    assert relevance[0] == pytest.approx(0.9) and list(relevance) == sorted(relevance, reverse=True) and relevance[1] <= 0.9


def test_the_calibration_fit_recovers_the_probabilities_of_a_tiny_judged_set():
    """Hits whose chance of relevance is a known logistic function of their score: the fit is calibrated."""
    rng = np.random.default_rng(3)
    data = []
    for q in range(300):
        scores = np.sort(rng.normal(0.0, 1.0, 10))[::-1]
        query = np.array([rng.uniform(0.2, 0.8), rng.uniform(0, 1), 0.0, 1.8, 1.0])
        p = 1 / (1 + np.exp(-(2.0 * scores - 1.0 + 1.5 * query[1])))
        data.append(Example("tiny", f"q{q}", True, scores, np.zeros(10, bool), query, (rng.uniform(size=10) < p).astype(float)))
    calibration = fit_calibration(data[:200])
    figures = calibration_figures([(e, relevances(calibration, e)) for e in data[200:]], calibration.threshold)
    assert figures["ece_top10"] < 0.05
    assert calibration.weights["score"] > 0 and calibration.weights["top_coverage"] > 0
    assert figures["judged_no_good_match"] <= 0.1


# -- rag fit ----------------------------------------------------------------------------------------------------
SECTIONS = ("Context", "Problem", "Solution", "Implementation", "Consequences", "Known Uses", "Cognitive Era", "Vitality")


def keyword_library(root, n: int = 24):
    """Pattern i carries the rare word zq{i} only among its search keywords; pattern i+1 repeats it in its body, so
    dense and full-text evidence point at the wrong pattern and only the keywords field at the right one."""
    for i in range(n):
        echo = " ".join([f"zq{(i - 1) % n}"] * 12)
        body = "\n".join(
            f"### Section {k}: {name}\n\n{name} of topic {i}. {echo if k == 3 else ''}\n" for k, name in enumerate(SECTIONS, 1)
        )
        hints = {"vector_keywords": [f"zq{i}"]}
        write_pattern(
            root,
            f"p{i}",
            front_matter(f"p{i}", f"Pattern Number {i}", summary=f"Pattern {i}.", ontology={"domain": "testing", "search_hints": hints}),
            body,
        )
    return root


def judged(path, n: int, grade_of) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({"qid": f"q{i}", "query": f"zq{i}", "relevant": grade_of(i)}) + "\n")


@pytest.fixture()
def keyword_index(tmp_path, monkeypatch):
    library = keyword_library(tmp_path / "lib")
    index_dir = tmp_path / "index"
    build_index(BuildSettings(library, index_dir), FakeEncoder())
    monkeypatch.setattr("rag.cli.fit.index_encoder", lambda index_dir: FakeEncoder())
    return library, index_dir


def test_rag_fit_learns_the_signal_the_judgments_favour_stores_it_and_reset_removes_it(keyword_index, tmp_path):
    library, index_dir = keyword_index
    queries = tmp_path / "judged.jsonl"
    judged(queries, 24, lambda i: {f"p{i}": 2})
    before = Retriever(SearchIndex.open(index_dir), FakeEncoder()).search("zq5", k=1).hits[0].slug
    result = runner.invoke(app, ["fit", str(queries), "--index-dir", str(index_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stored"] and report["accepted"] and report["after"]["ndcg@10"] > report["before"]["ndcg@10"] + 0.2
    manifest = read_manifest(current_build(index_dir))
    assert manifest.fit["file"] == FIT and FIT in manifest.files and manifest.fit["queries"] == 24
    index = SearchIndex.open(index_dir)
    assert index.fit is not None and index.fit["ranker"]["weights"]["keywords"] > 0
    assert before != "p5" and Retriever(index, FakeEncoder()).search("zq5", k=1).hits[0].slug == "p5"  # served with the fit
    rebuilt = build_index(BuildSettings(library, index_dir, rebuild=True), FakeEncoder())  # a rebuild keeps the fit
    assert read_manifest(current_build(index_dir)).fit is not None and rebuilt.build_id == current_build(index_dir).name
    reset = runner.invoke(app, ["fit", "--reset", "--index-dir", str(index_dir)])
    assert reset.exit_code == 0 and "shipped defaults again" in reset.output
    assert read_manifest(current_build(index_dir)).fit is None and SearchIndex.open(index_dir).fit is None


def test_rag_fit_refuses_a_fit_that_does_not_beat_the_defaults(keyword_index, tmp_path):
    _, index_dir = keyword_index
    queries = tmp_path / "judged.jsonl"
    defaults = Retriever(SearchIndex.open(index_dir), FakeEncoder())
    tops = [defaults.search(f"zq{i}", k=1).hits[0].slug for i in range(24)]
    judged(queries, 24, lambda i: {tops[i]: 2})  # the judgments agree with the defaults: nothing to gain
    build = current_build(index_dir).name
    result = runner.invoke(app, ["fit", str(queries), "--index-dir", str(index_dir)])
    assert result.exit_code == 1 and "not better than the defaults" in result.output
    assert current_build(index_dir).name == build and read_manifest(current_build(index_dir)).fit is None


def test_rag_fit_needs_enough_judged_queries(keyword_index, tmp_path):
    _, index_dir = keyword_index
    queries = tmp_path / "judged.jsonl"
    judged(queries, 5, lambda i: {f"p{i}": 2})
    result = runner.invoke(app, ["fit", str(queries), "--index-dir", str(index_dir)])
    assert result.exit_code == 1 and "only 5 judged queries; a fit needs 20" in result.output
