"""Evaluation harness: queries with judgments -> runs of retriever variants -> ranx metrics -> a report.

Queries are JSONL, one object a line: `{"qid", "query", "filters": {"domain", "context"}, "relevant": {slug: grade}}`;
`filters` and `relevant` are optional and other keys are kept (`kind` gives per-kind means). Judgments may
instead come from TREC qrels (`rag.trec`). A bad line is reported with its line number and skipped; every
valid line is still evaluated. Only queries with at least one grade > 0 are scored (recall is undefined without one).

Metrics come from ranx (Bassani, ECIR 2022), never from code here: nDCG@10, Recall@10, Recall@100, MRR@10, P@1.
ranx's `ndcg` uses linear gains (Järvelin & Kekäläinen 2002), as trec_eval's `ndcg_cut` does:
    nDCG@k = sum_{i<=k} rel_i / log2(i + 1)  /  the same sum over the ideal ranking;
the exponential gain 2^rel - 1 (Burges et al. 2005) is ranx's `ndcg_burges`, which is not reported.
ranx sees each run with the score 1/rank, so the ranking scored is exactly the one the retriever returned
(pinned names and ties included). Retrievers are compared with ranx's two-sided paired Student's t-test;
ranx 0.3.21's Fisher randomization test is not reproducible (its seeded numba RNG runs in parallel threads).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np

from rag.errors import QueryError, UnknownFilterValue
from rag.evaluation.trec import ScoredDoc, read_qrels
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.search.retriever import Retriever

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "precision@1")
LABELS = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@100": "R@100", "mrr@10": "MRR@10", "precision@1": "P@1"}
# ranx's Fisher randomization test seeds numba's generator inside a parallel loop: its p-values change from run to
# run, so only the paired t-test is offered
StatTest = Literal["student"]
# Retriever variants as fusion weights; None keeps the retriever's own settings.
VARIANTS: dict[str, dict[str, float] | None] = {
    "hybrid": None,
    "dense": {"dense": 1.0},
    "lexical": {"keywords": 1.0, "fulltext": 1.0},
}
FILTER_FIELDS = {f.name for f in fields(Filters)}


@dataclass(frozen=True, slots=True)
class Query:
    qid: str
    text: str
    line: int
    filters: Filters = Filters()
    relevant: dict[str, int] = field(default_factory=dict)  # judgments written on the line itself
    kind: str | None = None
    extra: dict = field(default_factory=dict)  # every other key of the line


@dataclass(frozen=True, slots=True)
class InputProblem:
    source: str
    line: int
    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class EvalInput:
    queries: tuple[Query, ...]  # the valid ones, filters normalized
    judgments: dict[str, dict[str, int]]  # qid -> slug -> grade, only for valid queries
    problems: tuple[InputProblem, ...]
    lines: int  # non-blank lines in the queries file

    @property
    def scored(self) -> list[str]:
        """Queries that can be scored: valid and with at least one relevant judgment."""
        return [q.qid for q in self.queries if any(g > 0 for g in self.judgments.get(q.qid, {}).values())]


@dataclass(frozen=True, slots=True)
class RunResult:
    name: str
    tag: str
    docs: dict[str, tuple[ScoredDoc, ...]]  # qid -> hits by rank
    ms_per_query: float  # median search time (the first query also loads the model)


@dataclass(frozen=True, slots=True)
class Comparison:
    a: str
    b: str
    metric: str
    delta: float  # mean(a) - mean(b)
    p_value: float | None  # None when the per-query values are identical
    significant: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    qids: tuple[str, ...]
    means: dict[str, dict[str, float]]  # run -> metric -> mean
    per_query: dict[str, dict[str, dict[str, float]]]  # run -> qid -> metric -> value
    comparisons: tuple[Comparison, ...]
    stat_test: str
    max_p: float


# -- input ----------------------------------------------------------------------------------
def parse_queries(path: Path) -> tuple[list[Query], list[InputProblem], int]:
    """Queries whose fields have the right types, one error per other line, and the count of non-blank lines."""
    source, queries, problems, seen, lines = str(path), [], [], {}, 0
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            lines += 1
            try:
                query = _parse_line(text, number)
            except ValueError as exc:
                problems.append(InputProblem(source, number, "error", str(exc)))
                continue
            if query.qid in seen:
                problems.append(InputProblem(source, number, "error", f"qid {query.qid!r} is already used on line {seen[query.qid]}"))
                continue
            seen[query.qid] = number
            queries.append(query)
    return queries, problems, lines


def _parse_line(text: str, number: int) -> Query:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    for key in ("qid", "query"):
        if key not in data:
            raise ValueError(f"missing field {key!r}")
    qid = data["qid"]
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    if not isinstance(qid, str) or not qid or any(c.isspace() for c in qid):
        raise ValueError(f"field 'qid' must be a non-empty string without spaces, got {data['qid']!r}")
    if not isinstance(data["query"], str):
        raise ValueError(f"field 'query' must be a string, got {type(data['query']).__name__}")
    kind = data.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ValueError(f"field 'kind' must be a string, got {type(kind).__name__}")
    extra = {k: v for k, v in data.items() if k not in ("qid", "query", "filters", "relevant", "kind")}
    return Query(qid, data["query"], number, _parse_filters(data.get("filters")), _parse_relevant(data.get("relevant")), kind, extra)


def _parse_filters(raw: object) -> Filters:
    if raw is None:
        return Filters()
    if not isinstance(raw, dict):
        raise ValueError(f"field 'filters' must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - FILTER_FIELDS)
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r}; filters are {', '.join(sorted(FILTER_FIELDS))}")
    for key, value in raw.items():
        number = key == "min_confidence"
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) if number else isinstance(value, str))
        if not ok:
            raise ValueError(f"filter {key!r} must be {'a number' if number else 'a string'} or null, got {value!r}")
    return Filters(**raw)


def _parse_relevant(raw: object) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"field 'relevant' must be an object of slug: grade, got {type(raw).__name__}")
    for slug, grade in raw.items():
        if not isinstance(grade, int) or isinstance(grade, bool):
            raise ValueError(f"grade of {slug!r} in 'relevant' must be an integer, got {grade!r}")
    return dict(raw)


def load_input(queries_path: Path, retriever: Retriever, k: int, qrels_path: Path | None = None) -> EvalInput:
    """Parse, validate with the retriever's own rules, and gather judgments; problems carry line numbers."""
    source = str(queries_path)
    parsed, problems, lines = parse_queries(queries_path)
    valid: list[Query] = []
    for q in parsed:
        try:
            prepared = retriever.prepare(SearchRequest(q.text, k, 0, q.filters))
            text, filters = prepared.text, prepared.filters
        except (UnknownFilterValue, QueryError) as exc:
            problems.append(InputProblem(source, q.line, "error", str(exc)))
            continue
        valid.append(Query(q.qid, text, q.line, filters, q.relevant, q.kind, q.extra))
    known = retriever.index.slug_row
    judgments: dict[str, dict[str, int]] = {}
    if qrels_path is None:
        for q in valid:
            judgments[q.qid] = dict(q.relevant)
            problems += [InputProblem(source, q.line, "warning", _absent(s)) for s in q.relevant if s not in known]
    else:
        judgments, more = _qrels_judgments(qrels_path, {q.qid for q in valid}, {q.qid for q in parsed}, known)
        problems += more
        inline = next((q for q in valid if q.relevant), None)
        if inline is not None:
            problems.append(
                InputProblem(
                    source, inline.line, "warning", f"'relevant' on the query lines is ignored because --qrels {qrels_path} is given"
                )
            )
    if any(judgments.values()):
        for q in valid:
            if not any(g > 0 for g in judgments.get(q.qid, {}).values()):
                problems.append(
                    InputProblem(
                        source, q.line, "warning", f"query {q.qid!r} has no relevant judgment; its run is written but it is not scored"
                    )
                )
    problems.sort(key=lambda p: (p.source != source, p.source, p.line))
    return EvalInput(tuple(valid), judgments, tuple(problems), lines)


def _absent(slug: str) -> str:
    return f"judged slug {slug!r} is not in the index; it counts as relevant but can never be retrieved"


def _qrels_judgments(path: Path, valid: set[str], parsed: set[str], known: Mapping[str, int]):
    qrels, errors = read_qrels(path)
    source = str(path)
    problems = [InputProblem(source, e.line, "error", e.message) for e in errors]
    judgments: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    for r in qrels:
        if r.qid not in parsed:
            problems.append(InputProblem(source, r.line, "warning", f"qid {r.qid!r} is not in the queries file; ignored"))
            continue
        if r.qid not in valid:
            continue  # the query's own line already has an error
        if (r.qid, r.doc) in where:
            problems.append(
                InputProblem(
                    source,
                    r.line,
                    "warning",
                    f"{r.qid} {r.doc} is judged again (first on line {where[r.qid, r.doc]}); the last grade counts",
                )
            )
        where[r.qid, r.doc] = r.line
        judgments.setdefault(r.qid, {})[r.doc] = r.grade
        if r.doc not in known:
            problems.append(InputProblem(source, r.line, "warning", _absent(r.doc)))
    return judgments, problems


# -- runs -----------------------------------------------------------------------------------
def variant(base: Retriever, name: str) -> Retriever:
    """The base retriever with a variant's fusion weights (the index and the embedder are shared)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown retriever variant {name!r}; choose from {', '.join(VARIANTS)}")
    weights = VARIANTS[name]
    # a signal alone is that signal's own ranking: no learned corrections (they read every signal's features)
    return (
        base
        if weights is None
        else Retriever(
            base.index,
            base.embedder,
            base.settings.with_(weights=dict(weights), fusion="convex" if base.settings.fusion == "learned" else base.settings.fusion),
        )
    )


def run_queries(retriever: Retriever, queries: Sequence[Query], k: int, name: str) -> RunResult:
    docs: dict[str, tuple[ScoredDoc, ...]] = {}
    times: list[float] = []
    for q in queries:
        started = time.perf_counter()
        hits = retriever.search(q.text, k, q.filters).hits
        times.append((time.perf_counter() - started) * 1000)
        docs[q.qid] = tuple(ScoredDoc(q.qid, h.slug, h.rank, h.score) for h in hits)
    ms = statistics.median(times) if times else 0.0
    log.info("%s: %d queries, median %.1f ms per query", name, len(queries), ms)
    return RunResult(name, f"rag-{name}", docs, ms)


# -- metrics --------------------------------------------------------------------------------
def evaluate(
    runs: Sequence[RunResult],
    judgments: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str] = METRICS,
    stat_test: StatTest = "student",
    max_p: float = 0.05,
    baseline: str | None = None,
) -> Evaluation:
    """ranx metrics of every run over the queries with a relevant judgment, and every pair compared (with `baseline`,
    only each run against that one: a variant table's rows need no test between two variants).

    The metrics and the test are ranx's own (its per-query `evaluate` and `paired_student_t_test`, called as
    `ranx.compare` calls them), but only for the pairs asked: `compare` tests
    every ordered pair, which for a 23-row table is 506 tests per metric and most of `rag eval --variants`' time."""
    from ranx import Qrels, Run  # heavy (numba); its first call compiles, then it is cached on disk
    from ranx import evaluate as ranx_evaluate
    from ranx.statistical_tests import paired_student_t_test

    qids = sorted(q for q, docs in judgments.items() if any(g > 0 for g in docs.values()))
    if not qids:
        raise ValueError("no query has a relevant judgment (grade > 0); nothing to score")
    if baseline is not None and baseline not in {r.name for r in runs}:
        raise ValueError(f"baseline {baseline!r} is not one of the runs")
    qrels = Qrels({q: dict(judgments[q]) for q in qids})
    qrels_list = qrels.to_typed_list()  # sorted by query id, as `qids` is
    scores: dict[str, dict[str, np.ndarray]] = {}
    for run in runs:
        scored = {q: {d.doc: 1.0 / d.rank for d in run.docs.get(q, ())} for q in qids}
        ranx_run = Run({q: d for q, d in scored.items() if d} or None, name=run.name)
        ranx_run = ranx_run if all(scored.values()) else ranx_run.make_comparable(qrels)  # adds empty lists
        # typed lists: the run holds exactly `qids` by construction, so ranx's key check (about 0.2 s a run) is skipped
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's NumbaTypeSafetyWarning inside ranx's ndcg
            found = ranx_evaluate(qrels_list, ranx_run.to_typed_list(), list(metrics), return_mean=False, save_results_in_run=False)
        scores[run.name] = found if len(metrics) > 1 else {metrics[0]: found}
    per_query = {name: {q: {m: float(values[m][i]) for m in metrics} for i, q in enumerate(qids)} for name, values in scores.items()}
    means = {name: {m: float(np.mean(values[m])) for m in metrics} for name, values in scores.items()}
    comparisons = []
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            if baseline is not None and baseline not in (a.name, b.name):
                continue
            for m in metrics:
                # ranx.compare keeps the test of its last ordered pair, (b, a): the same call here
                control, treatment = scores[b.name][m], scores[a.name][m]
                p, significant = paired_student_t_test(control, treatment, max_p)
                p = None if math.isnan(p) else float(p)
                delta = means[a.name][m] - means[b.name][m]
                comparisons.append(Comparison(a.name, b.name, m, delta, p, bool(p is not None and significant)))
    return Evaluation(tuple(qids), means, per_query, tuple(comparisons), stat_test, max_p)


def per_kind(evaluation: Evaluation, queries: Sequence[Query]) -> dict[str, dict[str, dict[str, float]]]:
    """run -> kind -> {"queries": n, metric: mean}; empty when no query has a kind."""
    kinds: dict[str, list[str]] = {}
    scored = set(evaluation.qids)
    for q in queries:
        if q.kind is not None and q.qid in scored:
            kinds.setdefault(q.kind, []).append(q.qid)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for run, values in evaluation.per_query.items():
        for kind, qids in kinds.items():
            row: dict[str, float] = {"queries": len(qids)}
            for m in next(iter(values.values())):
                row[m] = sum(values[q][m] for q in qids) / len(qids)
            out.setdefault(run, {})[kind] = row
    return out
