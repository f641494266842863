"""Fit the shipped relevance calibration (rag/search/calibration.py) on judged sets and queries without an answer.

    python -m lab.calibrate --data DATA_DIR --sets bmn,bmn-r3,patterns,commons-os,commons-os-r3 \\
        [--out rag/search/calibration.json] [--report eval/calibration.md]

DATA_DIR holds the sets' candidate features (`python -m lab.ranking_data ... --no-answer eval/dev/no-answer.jsonl`; the
`<index>-none` sets are the negatives). The calibration is fitted on the top 10 hits of the shipped ranker's order;
5-fold cross-validation (folds by query, every set split evenly) gives the held-out expected calibration error per
library, over the top 10 hits and for the top hit, and the no-good-match rates of judged and unanswerable queries.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lab.common import markdown, write_report
from lab.ranking_data import load
from rag.evaluation.fit import PASS_RATE, calibration_figures, examples, fit_calibration, folds_of, relevances, weights_of
from rag.search.retriever import default_ranker

LIBRARY = {"bmn": "bmn", "bmn-r3": "bmn", "patterns": "patterns", "commons-os": "commons-os", "commons-os-r3": "commons-os"}


def library_of(name: str) -> str:
    return LIBRARY.get(name, name.removesuffix("-none"))


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--data", type=Path, required=True)
    options.add_argument("--sets", required=True, help="comma-separated set names in DATA_DIR")
    options.add_argument("--folds", type=int, default=5)
    options.add_argument("--pass-rate", type=float, default=PASS_RATE)
    options.add_argument("--out", type=Path)
    options.add_argument("--report", type=Path)
    args = options.parse_args(argv)
    names = args.sets.split(",")
    queries = [q for name in names for q in load(args.data / name)]
    for none in sorted({library_of(n) for n in names}):
        path = args.data / f"{none}-none"
        if path.with_suffix(".npz").exists():
            queries += load(path)
    weights = weights_of(default_ranker())
    data = examples(queries, weights)
    fold = folds_of(queries, args.folds)
    fold_of = {(q.set, q.qid): f for q, f in zip(queries, fold)}
    held = []
    for f in range(args.folds):
        calibration = fit_calibration([e for e in data if fold_of[e.set, e.qid] != f], args.pass_rate)
        held += [(e, relevances(calibration, e), calibration.threshold) for e in data if fold_of[e.set, e.qid] == f]
    final = fit_calibration(data, args.pass_rate)
    per_library: dict[str, dict] = {}
    for lib in sorted({library_of(e.set) for e in data}):
        mine = [(e, r) for e, r, _ in held if library_of(e.set) == lib]
        thresholds = [t for e, _, t in held if library_of(e.set) == lib]
        per_library[lib] = calibration_figures(mine, float(np.mean(thresholds)))
        per_library[lib]["judged_no_good_match"] = round(
            float(np.mean([r[0] < t for e, r, t in held if library_of(e.set) == lib and e.answered])), 4
        )
        none = [r[0] < t for e, r, t in held if library_of(e.set) == lib and not e.answered]
        per_library[lib]["no_answer_no_good_match"] = round(float(np.mean(none)), 4) if none else None
    command = f"python -m lab.calibrate --data {args.data} --sets {args.sets} --folds {args.folds} --pass-rate {args.pass_rate}"
    final = type(final)(**{**final.to_dict(), "source": command, "metrics": {"cross_validated": per_library}})
    if args.out:
        final.save(args.out)
    lines = [
        "relevance = sigmoid("
        + " + ".join(f"{w:.3f} x {n}" for n, w in final.weights.items())
        + f" {final.bias:+.3f}); pinned hits {final.pinned:.3f}; no good match below {final.threshold:.4f}.",
        "",
        "Held out (5-fold cross-validation by query):",
        "",
        "| library | queries | ECE top 10 | ECE top 1 | mean relevance, top 1 | judged relevant, top 1 "
        "| judged queries saying no good match | unanswerable queries saying no good match |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lib, m in per_library.items():
        none = "-" if m["no_answer_no_good_match"] is None else f"{m['no_answer_no_good_match']:.0%} of {m['no_answer_queries']}"
        lines.append(
            f"| {lib} | {m['queries']} | {m['ece_top10']:.3f} | {m['ece_top1']:.3f} | {m['mean_relevance_top1']:.3f} | "
            f"{m['judged_relevant_top1']:.3f} | {m['judged_no_good_match']:.1%} | {none} |"
        )
    text = markdown("Relevance calibration (one score)", command, lines)
    if args.report:
        write_report(args.report, text, {"calibration": final.to_dict()})
    print(text)


if __name__ == "__main__":
    main()
