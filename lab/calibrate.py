"""Fit the relevance calibration (rag/search/calibration.py) on judged dev queries, k-fold cross-validated.

    python -m lab.calibrate --set bmn:index/bmn:eval/dev/bmn.jsonl \
        --set patterns:index/patterns:eval/dev/patterns.jsonl --no-answer eval/dev/no-answer.jsonl \
        --out rag/search/calibration.json --report eval/calibration.md

Examples are (query, hit) pairs of the top `--depth` hits of the default retriever: a hit judged 1 or 2 is
positive, any other hit negative; every hit of a no-answer query (run against every library) is negative.
Folds split queries, never pairs of one query. The no-good-match threshold is the `--judged-pass` quantile
(default 2%) of the best hit's relevance over the judged queries of the training folds, so that about 95%
of judged queries say `no_good_match: false`; cross-validation reports how it holds on held-out folds.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.common import command, markdown, parser, write_report
from rag.embedding.minilm import MiniLMEncoder
from rag.evaluation.harness import Query, parse_queries
from rag.index.search_index import SearchIndex
from rag.records.request import SearchRequest
from rag.search.calibration import FEATURES, Calibration, features, fit_logistic, logloss
from rag.search.retriever import Retriever

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    set: str
    qid: str
    judged: bool  # a query with an answer (False: a no-answer query)
    x: np.ndarray  # (depth, len(FEATURES))
    y: np.ndarray  # (depth,)


def examples(name: str, retriever: Retriever, queries: list[Query], depth: int, judged: bool) -> list[Example]:
    out = []
    for q in queries:
        query = retriever.prepare(SearchRequest(q.text, depth, 0, q.filters))
        if retriever.needs_vector:
            query = query.with_vector(retriever.embedder.encode_query(query.text))
        runs = retriever.signal_runs(query)
        fused, pinned = retriever.fuse(runs)
        pinned_set = set(pinned)
        order = (pinned + [row for row, _ in fused if row not in pinned_set])[:depth]
        if not order:
            continue
        x = features(order, runs, query)
        grades = q.relevant if judged else {}
        y = np.array([1.0 if grades.get(retriever.index.patterns[r].slug, 0) >= 1 else 0.0 for r in order])
        out.append(Example(name, q.qid, judged, x, y))
    return out


def fit(train: list[Example], pass_rate: float) -> Calibration:
    x = np.vstack([e.x for e in train])
    y = np.concatenate([e.y for e in train])
    weights, bias = fit_logistic(x, y)
    calibration = Calibration(dict(zip(FEATURES, map(float, weights))), bias, 0.0)
    tops = [float(calibration.relevance(e.x).max()) for e in train if e.judged]
    threshold = float(np.quantile(tops, pass_rate)) if tops else 0.5
    return Calibration(calibration.weights, bias, threshold)


def evaluate(calibration: Calibration, held: list[Example]) -> dict:
    x = np.vstack([e.x for e in held])
    y = np.concatenate([e.y for e in held])
    tops = {(e.set, e.qid, e.judged): float(calibration.relevance(e.x).max()) for e in held}
    judged = [v for (s, q, j), v in tops.items() if j]
    none = [v for (s, q, j), v in tops.items() if not j]
    return {
        "logloss": logloss(calibration.relevance(x), y),
        "judged": len(judged),
        "judged_flagged": sum(v < calibration.threshold for v in judged),
        "no_answer": len(none),
        "no_answer_flagged": sum(v < calibration.threshold for v in none),
    }


def cross_validate(data: list[Example], folds: int, pass_rate: float, seed: int = 13) -> dict:
    keys = sorted({(e.set, e.qid) for e in data})
    random.Random(seed).shuffle(keys)
    fold_of = {key: i % folds for i, key in enumerate(keys)}
    totals = {"logloss": 0.0, "judged": 0, "judged_flagged": 0, "no_answer": 0, "no_answer_flagged": 0}
    for fold in range(folds):
        train = [e for e in data if fold_of[e.set, e.qid] != fold]
        held = [e for e in data if fold_of[e.set, e.qid] == fold]
        figures = evaluate(fit(train, pass_rate), held)
        totals["logloss"] += figures["logloss"] / folds
        for key in ("judged", "judged_flagged", "no_answer", "no_answer_flagged"):
            totals[key] += figures[key]
    return {
        "folds": folds,
        "logloss": round(totals["logloss"], 4),
        "judged_queries": totals["judged"],
        "judged_no_good_match_rate": round(totals["judged_flagged"] / max(1, totals["judged"]), 4),
        "no_answer_queries": totals["no_answer"],
        "no_answer_no_good_match_rate": round(totals["no_answer_flagged"] / max(1, totals["no_answer"]), 4),
    }


def main(argv: Sequence[str] | None = None) -> None:
    options = parser(__doc__)
    options.add_argument("--no-answer", type=Path, help="Queries with no answer in any library (JSONL).")
    options.add_argument("--depth", type=int, default=10, help="Hits per query (1 to 100).")
    options.add_argument("--folds", type=int, default=5, help="Folds of the cross-validation (at least 2).")
    options.add_argument(
        "--judged-pass", type=float, default=0.02, help="Quantile of the judged queries' best relevance taken as the threshold (0 to 0.5)."
    )
    options.add_argument("--out", type=Path, help="Write the fitted calibration JSON here.")
    options.add_argument("--report", type=Path, help="Write a Markdown report here.")
    args = options.parse_args(argv)
    for flag, value, low, high in (
        ("--depth", args.depth, 1, 100),
        ("--folds", args.folds, 2, None),
        ("--judged-pass", args.judged_pass, 0.0, 0.5),
    ):
        if value < low or (high is not None and value > high):
            options.error(f"{flag} must be at least {low}" + (f" and at most {high}" if high is not None else "") + f", got {value}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    encoder = MiniLMEncoder()
    data: list[Example] = []
    none_queries = parse_queries(args.no_answer)[0] if args.no_answer else []
    for s in args.set:
        retriever = Retriever(SearchIndex.open(s.index_dir), encoder)
        queries = [q for q in parse_queries(s.queries)[0] if q.relevant]
        data += examples(s.name, retriever, queries, args.depth, judged=True)
        data += examples(f"{s.name}/no-answer", retriever, none_queries, args.depth, judged=False)
    cv = cross_validate(data, args.folds, args.judged_pass)
    final = fit(data, args.judged_pass)
    source = command("lab.calibrate", args.set, *([f"--no-answer {args.no_answer}"] if args.no_answer else []))
    final = Calibration(
        final.weights,
        final.bias,
        final.threshold,
        source=source,
        metrics={"cross_validated": cv, "pairs": int(sum(len(e.y) for e in data))},
    )
    print(json.dumps(final.to_dict(), indent=1))
    if args.out:
        final.save(args.out)
    if args.report:
        write_report(args.report, report(final, cv, data))


def report(final: Calibration, cv: dict, data: list[Example]) -> str:
    per_set: dict[str, list[float]] = {}
    for e in data:
        per_set.setdefault(e.set, []).append(float(final.relevance(e.x).max()))
    lines = [
        f"relevance = sigmoid({final.bias:.3f} + " + " + ".join(f"{final.weights[f]:.3f} x {f}" for f in FEATURES) + ")",
        f"; no_good_match when the best hit's relevance < {final.threshold:.3f}.",
        "",
        f"## Cross-validated ({cv['folds']} folds over queries)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| log loss of (query, hit) pairs | {cv['logloss']:.4f} |",
        f"| judged queries saying no_good_match (goal at most 5%) | {cv['judged_no_good_match_rate']:.1%} of {cv['judged_queries']} |",
        f"| no-answer queries saying no_good_match | {cv['no_answer_no_good_match_rate']:.1%} of {cv['no_answer_queries']} |",
        "",
        "## Best-hit relevance per set (final fit, in-sample)",
        "",
        "| set | queries | min | median | max | below threshold |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, tops in per_set.items():
        arr = np.array(tops)
        lines.append(
            f"| {name} | {len(arr)} | {arr.min():.3f} | {np.median(arr):.3f} | {arr.max():.3f} | {int((arr < final.threshold).sum())} |"
        )
    return markdown("Relevance calibration and no-good-match", final.source, lines)


if __name__ == "__main__":  # pragma: no cover
    main()
