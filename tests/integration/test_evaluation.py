"""The evaluation harness: ranx metrics on tiny inline runs, bad input by line, TREC files, and `rag eval` end to end.

Expected metric values are written as arithmetic. ranx's `ndcg` uses linear gains, rel / log2(rank + 1)
(Järvelin & Kekäläinen, as trec_eval's ndcg_cut), not 2^rel - 1 (that is ranx's `ndcg_burges`): grades 2 and 1
at ranks 1 and 3 give (2/log2(2) + 1/log2(4)) / (2/log2(2) + 1/log2(3)), not (3/log2(2) + 1/log2(4)) / (3/log2(2) + 1/log2(3)).
"""

from __future__ import annotations

import json
import re
from math import log2
from pathlib import Path

import pytest
from scipy.stats import ttest_rel
from typer.testing import CliRunner

from rag.evaluation.harness import METRICS, Query, RunResult, evaluate, load_input, per_kind
from rag.evaluation.trec import Qrel, ScoredDoc, format_run, out_of_order, read_qrels, read_run, write_qrels, write_run


def run_of(name: str, ranked: dict[str, list[str]], scores: dict[str, list[float]] | None = None) -> RunResult:
    docs = {}
    for qid, slugs in ranked.items():
        values = (scores or {}).get(qid) or [1.0 / r for r in range(1, len(slugs) + 1)]
        docs[qid] = tuple(ScoredDoc(qid, s, r, v) for r, (s, v) in enumerate(zip(slugs, values), start=1))
    return RunResult(name, f"rag-{name}", docs, 0.0)


JUDGMENTS = {
    "q1": {"a": 2, "c": 1},
    "q2": {"x": 1, "y": 1, "z": 1},
    "q3": {"deep": 1},
    "q4": {"a": 0},  # judged, nothing relevant: not scored
}
FILLER = [f"f{i:02d}" for i in range(10)]
RUN = run_of("hybrid", {"q1": ["a", "b", "c"], "q2": ["b", "x"], "q3": FILLER + ["deep"], "q4": ["a"]})


def test_metrics_per_query_and_means_are_ranx_values_written_as_arithmetic():
    result = evaluate([RUN], JUDGMENTS)
    assert result.qids == ("q1", "q2", "q3")
    q = result.per_query["hybrid"]
    assert q["q1"]["ndcg@10"] == pytest.approx((2 / log2(2) + 1 / log2(4)) / (2 / log2(2) + 1 / log2(3)))
    assert q["q2"]["ndcg@10"] == pytest.approx((1 / log2(3)) / (1 / log2(2) + 1 / log2(3) + 1 / log2(4)))
    assert q["q3"]["ndcg@10"] == 0.0  # the relevant document is at rank 11
    assert [q[i]["recall@10"] for i in ("q1", "q2", "q3")] == pytest.approx([2 / 2, 1 / 3, 0])
    assert [q[i]["recall@100"] for i in ("q1", "q2", "q3")] == pytest.approx([2 / 2, 1 / 3, 1 / 1])
    assert [q[i]["mrr@10"] for i in ("q1", "q2", "q3")] == pytest.approx([1 / 1, 1 / 2, 0])
    assert [q[i]["precision@1"] for i in ("q1", "q2", "q3")] == pytest.approx([1, 0, 0])
    means = result.means["hybrid"]
    assert means["recall@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert means["mrr@10"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert list(means) == list(METRICS)


def test_the_ranking_as_returned_is_scored_even_when_scores_rise():
    # A name pinned first keeps a lower fused score than the hit below it; rank, not score, decides.
    pinned = run_of("hybrid", {"q1": ["c", "a"]}, {"q1": [0.01, 0.05]})
    q = evaluate([pinned], {"q1": {"a": 2, "c": 1}}).per_query["hybrid"]["q1"]
    assert q["ndcg@10"] == pytest.approx((1 / log2(2) + 2 / log2(3)) / (2 / log2(2) + 1 / log2(3)))
    assert q["precision@1"] == 1.0 and q["mrr@10"] == 1.0
    assert out_of_order(pinned.docs) == ["q1"]


def test_paired_comparison_is_a_students_t_test_on_per_query_values():
    other = run_of("dense", {"q1": ["b", "a"], "q2": ["x", "y", "z"], "q3": ["deep"], "q4": []})
    result = evaluate([RUN, other], JUDGMENTS)
    ndcg = next(c for c in result.comparisons if c.metric == "ndcg@10")
    a = [result.per_query["hybrid"][q]["ndcg@10"] for q in result.qids]
    b = [result.per_query["dense"][q]["ndcg@10"] for q in result.qids]
    assert (ndcg.a, ndcg.b) == ("hybrid", "dense")
    assert ndcg.delta == pytest.approx(sum(a) / 3 - sum(b) / 3)
    assert ndcg.p_value == pytest.approx(ttest_rel(a, b).pvalue)
    assert ndcg.significant is False  # three queries are too few
    same = evaluate([RUN, run_of("copy", {q: [d.doc for d in docs] for q, docs in RUN.docs.items()})], JUDGMENTS)
    assert all(c.p_value is None and c.delta == 0 and not c.significant for c in same.comparisons)


def test_a_run_with_no_hits_scores_zero():
    result = evaluate([run_of("empty", {"q1": [], "q2": []})], {"q1": {"a": 1}, "q2": {"b": 2}})
    assert result.means["empty"] == {m: 0.0 for m in METRICS}


def test_per_kind_means():
    queries = [
        Query("q1", "x", 1, kind="name"),
        Query("q2", "x", 2, kind="name"),
        Query("q3", "x", 3, kind="situation"),
        Query("q4", "x", 4, kind="name"),
    ]
    kinds = per_kind(evaluate([RUN], JUDGMENTS), queries)["hybrid"]
    assert kinds["name"]["queries"] == 2  # q4 is not scored
    assert kinds["name"]["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert kinds["situation"]["recall@100"] == 1.0


# -- TREC files -------------------------------------------------------------------------------
def test_run_file_round_trip_with_ties_written_in_rank_order(tmp_path):
    docs = (ScoredDoc("q1", "zeta", 1, 0.5), ScoredDoc("q1", "alpha", 2, 0.5), ScoredDoc("q1", "mid", 3, 0.25))
    run = {"q1": tuple(reversed(docs)), "q0": (ScoredDoc("q0", "only", 1, 1.0),)}
    write_run(tmp_path / "run.trec", run, "rag-hybrid")
    assert (tmp_path / "run.trec").read_text().splitlines() == [
        "q1 Q0 zeta 1 0.500000 rag-hybrid",
        "q1 Q0 alpha 2 0.500000 rag-hybrid",
        "q1 Q0 mid 3 0.250000 rag-hybrid",
        "q0 Q0 only 1 1.000000 rag-hybrid",
    ]
    back, tag = read_run(tmp_path / "run.trec")
    assert tag == "rag-hybrid"
    assert back == {"q1": list(docs), "q0": [ScoredDoc("q0", "only", 1, 1.0)]}
    with pytest.raises(ValueError, match="one word"):
        format_run(run, "two words")


def test_qrels_round_trip_and_bad_lines_by_number(tmp_path):
    qrels = [Qrel("q1", "a", 2, 1), Qrel("q1", "b", 0, 2), Qrel("q2", "c", 1, 3)]
    write_qrels(tmp_path / "qrels", qrels)
    assert read_qrels(tmp_path / "qrels") == (qrels, [])
    (tmp_path / "bad").write_text("q1 0 a 2\n\nq1 0 b\nq2 0 c high\nq3 0 d 1\n")
    good, errors = read_qrels(tmp_path / "bad")
    assert good == [Qrel("q1", "a", 2, 1), Qrel("q3", "d", 1, 5)]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'bad'}:3: expected 4 fields `qid 0 docid rel`, got 3",
        f"{tmp_path / 'bad'}:4: relevance 'high' is not an integer",
    ]


def test_run_path_naming():
    from rag.cli.evaluate import run_path

    assert run_path(Path("runs/pat"), "dense", True) == Path("runs/pat.dense.trec")
    assert run_path(Path("runs/pat.trec"), "dense", True) == Path("runs/pat.dense.trec")
    assert run_path(Path("runs/{retriever}/run.txt"), "lexical", True) == Path("runs/lexical/run.txt")
    assert run_path(Path("runs/pat.trec"), "hybrid", False) == Path("runs/pat.trec")


# -- bad input (validated by the real retriever over patterns/) --------------------------------
BAD_LINES = [
    '{"qid": "q1", "kind": "name", "query": "time banking", "relevant": {"time-banking": 2}}',
    "",
    "{not json",
    '{"query": "no id"}',
    '{"qid": "q5", "query": 5}',
    '{"qid": "q6", "query": "support", "filters": {"context": "martian"}}',
    '{"qid": "q7", "query": "   "}',
    '{"qid": "q1", "query": "again"}',
    '{"qid": "q9", "query": "borrow a drill", "relevant": {"no-such-pattern": 1, "shared-tool-library": 2}}',
    '{"qid": "q10", "query": "x", "relevant": {"a": "high"}}',
    '{"qid": "q11", "query": "x", "filters": {"colour": "red"}}',
    '{"qid": "q12", "query": "unjudged", "filters": {"domain": "Finance"}}',
]


def test_bad_lines_are_reported_by_number_and_valid_lines_kept(tmp_path, retriever):
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(BAD_LINES) + "\n")
    data = load_input(path, retriever, 10)
    assert [q.qid for q in data.queries] == ["q1", "q9", "q12"]
    assert data.queries[2].filters.domain == "finance"  # normalized by the retriever
    assert data.lines == 11 and data.scored == ["q1", "q9"]
    got = [(p.line, p.severity, p.message) for p in data.problems]
    assert got[0] == (3, "error", "not valid JSON (Expecting property name enclosed in double quotes at column 2)")
    assert got[1] == (4, "error", "missing field 'qid'")
    assert got[2] == (5, "error", "field 'query' must be a string, got int")
    assert got[3][:2] == (6, "error") and got[3][2].startswith("unknown context 'martian'; valid values: academic, activist,")
    assert got[4] == (7, "error", "query is empty; describe a situation or name a pattern")
    assert got[5] == (8, "error", "qid 'q1' is already used on line 1")
    assert got[6] == (9, "warning", "judged slug 'no-such-pattern' is not in the index; it counts as relevant but can never be retrieved")
    assert got[7] == (10, "error", "grade of 'a' in 'relevant' must be an integer, got 'high'")
    assert got[8][:2] == (11, "error") and got[8][2].startswith("unknown filter 'colour'; filters are")
    assert got[9] == (12, "warning", "query 'q12' has no relevant judgment; its run is written but it is not scored")
    assert len(got) == 10
    assert str(data.problems[0]) == f"{path}:3: error: not valid JSON (Expecting property name enclosed in double quotes at column 2)"


def test_qrels_file_replaces_inline_judgments(tmp_path, retriever):
    (tmp_path / "q.jsonl").write_text(
        '{"qid": "a", "query": "time banking", "relevant": {"time-banking": 2}}\n{"qid": "b", "query": "tool library"}\n'
    )
    (tmp_path / "qrels").write_text("b 0 shared-tool-library 2\nb 0 nope 1\nzz 0 time-banking 1\nb 0 x\n")
    data = load_input(tmp_path / "q.jsonl", retriever, 10, tmp_path / "qrels")
    assert data.judgments == {"b": {"shared-tool-library": 2, "nope": 1}}
    assert data.scored == ["b"]
    assert [(Path(p.source).name, p.line, p.message) for p in data.problems] == [
        ("q.jsonl", 1, f"'relevant' on the query lines is ignored because --qrels {tmp_path / 'qrels'} is given"),
        ("q.jsonl", 1, "query 'a' has no relevant judgment; its run is written but it is not scored"),
        ("qrels", 2, "judged slug 'nope' is not in the index; it counts as relevant but can never be retrieved"),
        ("qrels", 3, "qid 'zz' is not in the queries file; ignored"),
        ("qrels", 4, "expected 4 fields `qid 0 docid rel`, got 3"),
    ]


# -- `rag eval` end to end ----------------------------------------------------------------------
E2E = [
    {"qid": "e1", "kind": "name", "query": "Time Banking", "relevant": {"time-banking": 2}},
    {
        "qid": "e2",
        "kind": "situation",
        "query": "neighbours share ladders, drills and other tools from one lending library",
        "relevant": {"shared-tool-library": 2},
    },
    {
        "qid": "e3",
        "kind": "name",
        "query": "blameless postmortem",
        "filters": {"domain": None, "context": "tech"},
        "relevant": {"blameless-postmortem": 2},
    },
]
TREC_LINE = re.compile(r"^(e[123]) Q0 ([a-z0-9-]+) (\d+) (-?\d+\.\d{6}) (rag-(?:hybrid|dense|lexical))$")


@pytest.fixture()
def cli(monkeypatch, embedder):
    from rag.cli import common
    from rag.cli.app import app

    monkeypatch.setattr(common, "encoder", lambda: embedder)  # reuse the session's model
    monkeypatch.setattr(common, "query_encoder", lambda: embedder)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_rag_eval_all_writes_report_and_trec_runs(tmp_path, patterns_index_dir, cli):
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps(q) + "\n" for q in E2E))
    result = cli(
        "eval",
        queries,
        "--retriever",
        "all",
        "-k",
        20,
        "--index-dir",
        patterns_index_dir,
        "--run-out",
        tmp_path / "runs" / "pat",
        "--report",
        tmp_path / "report.md",
    )
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report.md").read_text()
    assert "| retriever | queries | nDCG@10 | R@10 | R@100 | MRR@10 | P@1 | median ms | run file |" in report
    assert re.search(r"^\| hybrid \| 3 \| 1\.000 \| 1\.000 \| 1\.000 \| 1\.000 \| 1\.000 \|", report, re.M), report
    assert "| hybrid vs dense |" in report and "| name | 2 | hybrid |" in report
    assert "## Worst 3 queries (hybrid, by nDCG@10)" in report
    for name in ("hybrid", "dense", "lexical"):
        lines = (tmp_path / "runs" / f"pat.{name}.trec").read_text().splitlines()
        rows = [TREC_LINE.match(line) for line in lines]
        assert all(rows), lines
        assert {r[5] for r in rows} == {f"rag-{name}"}
        for qid in ("e1", "e2", "e3"):
            ranks = [int(r[3]) for r in rows if r[1] == qid]
            assert ranks == list(range(1, len(ranks) + 1)) and 1 <= len(ranks) <= 20
        assert next(r[2] for r in rows if r[1] == "e1") == "time-banking"
    as_json = cli("eval", queries, "--json", "--retriever", "lexical", "-k", 10, "--index-dir", patterns_index_dir)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert list(data["means"]) == ["lexical"] and data["means"]["lexical"]["precision@1"] == 1.0 and data["counts"]["scored"] == 3


def test_rag_eval_exits_2_on_unusable_input(tmp_path, patterns_index_dir, cli):
    (tmp_path / "bad.jsonl").write_text('{"qid": "a"}\n{oops\n')
    result = cli("eval", tmp_path / "bad.jsonl", "--index-dir", patterns_index_dir)
    assert result.exit_code == 2
    assert f"{tmp_path / 'bad.jsonl'}:1: error: missing field 'query'" in result.stderr
    assert f"error: no valid query in {tmp_path / 'bad.jsonl'} (2 non-blank lines)" in result.stderr
    missing = cli("eval", tmp_path / "bad.jsonl", "--index-dir", tmp_path / "nowhere")
    assert missing.exit_code == 2 and f"no index in {tmp_path / 'nowhere'}" in missing.stderr
