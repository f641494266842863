"""The ranking report (issue 27): eval/ranking.md and .json, from candidate features extracted once.

    python -m lab.ranking_data --out DATA --no-answer eval/dev/no-answer.jsonl \\
        --set bmn:index/bmn:eval/dev/bmn.jsonl --set bmn-r3:index/bmn:eval/dev/bmn-r3.jsonl \\
        --set patterns:index/patterns:eval/dev/patterns.jsonl --set commons-os:index/commons-os:eval/dev/commons-os.jsonl \\
        --set commons-os-r3:index/commons-os:eval/dev/commons-os-r3.jsonl \\
        --set bmn-locked:index/bmn:eval/locked/bmn-r3.jsonl --set commons-os-locked:index/commons-os:eval/locked/commons-os-r3.jsonl
    python -m lab.ranking --data DATA --report eval/ranking.md

Per library and query kind, on the round-3 dev sets and on the locked test split: the shipped ranking (the learned
fusion) against reciprocal rank fusion of the four signals (fusion="rrf") and of full-text BM25 and section-level dense
search alone (the "30-line fusion"), nDCG@10, R@10, MRR@10, P@1 and R@100, with paired t-tests. Then each method this
round measured, alone (its feature as the only ranking) and inside the fusion (5-fold cross-validated refits with and
without it, every dev set in the training folds), and the refit of the whole fusion against the shipped weights; and
the calibration of the one score (eval/calibration.json, `python -m lab.calibrate`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lab.common import markdown, write_report
from lab.ranking_data import Query, load
from rag.evaluation import fit as F
from rag.search.learned import FEATURES, LENGTH_INTERACTIONS
from rag.search.metrics import at_k
from rag.search.retriever import default_ranker

DEV = ("bmn", "bmn-r3", "patterns", "commons-os", "commons-os-r3")  # every dev set: the training folds of the refits
ROUND3 = {"bmn": ("bmn-r3", "bmn-locked"), "commons-os": ("commons-os-r3", "commons-os-locked")}
METRICS = ("ndcg@10", "recall@10", "mrr@10", "precision@1", "recall@100")
OLD = tuple(FEATURES[:15])  # the shipped ranker's features
METHODS: dict[str, tuple[str, ...]] = {
    "sentences of a narrative query (dense per sentence: best and mean)": ("d_sent_max", "d_sent_mean"),
    "pseudo-relevance feedback on the dense vector (Rocchio over the top 10 chunks)": ("d_prf",),
    "pattern-level vector (centroid of summary, problem, context, solution)": ("d_pattern",),
    "per-query relative dense score (transfers across library sizes)": ("d_rel",),
    "rank features (60 / (60 + rank) per signal: scale-free)": ("r_dense", "r_fulltext", "r_keywords", "r_names"),
    "hub prior (already a feature; measured by removing it)": ("hub",),
    "pseudo-relevance feedback on BM25 (RM3-like: 20 terms typical of the top 10 full-text patterns, weight 0.5)": ("l_rm3",),
    "query-term weighting for narratives (full-text BM25 of the query's 6 rarest words)": ("l_key",),
    "query-dependent fusion (dense, problem, full-text, keyword, coverage and name features x the query's length)": tuple(
        f"x_{name}" for name in LENGTH_INTERACTIONS
    ),
    "BM25 over fields with fitted weights (best passage BM25 in problem, solution and summary sections)": (
        "l_problem",
        "l_solution",
        "l_summary",
    ),
}


def metrics(order: Sequence[int], q: Query) -> dict[str, float]:
    out = dict(at_k(order, q.grades, 10))
    out["recall@100"] = sum(1 for r in q.grades if r in set(order[:100])) / len(q.grades) if q.grades else 0.0
    return out


def paired_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    from scipy.stats import ttest_rel

    if len(a) < 2 or np.allclose(a, b):
        return None
    return float(ttest_rel(a, b).pvalue)


def table(queries: Sequence[Query], systems: dict[str, Callable[[Query], list[int]]]) -> dict:
    """{kind: {system: {metric: mean}}} plus paired p-values of nDCG@10 against the 30-line fusion and the default."""
    kinds = ["all", *sorted({q.kind for q in queries})]
    out: dict = {}
    for kind in kinds:
        members = [q for q in queries if kind == "all" or q.kind == kind]
        per = {name: [metrics(rank(q), q) for q in members] for name, rank in systems.items()}
        out[kind] = {"queries": len(members)}
        for name, rows in per.items():
            out[kind][name] = {m: round(float(np.mean([r[m] for r in rows])), 3) for m in METRICS}
        ndcg = {name: [r["ndcg@10"] for r in rows] for name, rows in per.items()}
        out[kind]["p_vs_rrf2"] = {name: paired_p(v, ndcg["rrf2"]) for name, v in ndcg.items() if name != "rrf2"}
        out[kind]["p_vs_default"] = {name: paired_p(v, ndcg["default"]) for name, v in ndcg.items() if name != "default"}
    return out


def cross_validated(queries: Sequence[Query], features: Sequence[str], k: int = 5) -> dict[str, list[int]]:
    """Held-out rankings of a refit over `features` (constants by inner cross-validation)."""
    held: dict[str, list[int]] = {}
    fold = F.folds_of(queries, k)
    for f in range(k):
        weights, _ = F.fit_ranker([q for q, g in zip(queries, fold) if g != f], [list(features)])
        for q, g in zip(queries, fold):
            if g == f:
                held[f"{q.set}:{q.qid}"] = F.rank(q, weights)
    return held


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--data", type=Path, required=True)
    options.add_argument("--report", type=Path, default=Path("eval/ranking.md"))
    args = options.parse_args(argv)
    dev = [q for name in DEV for q in load(args.data / name)]
    shipped = F.weights_of(default_ranker())
    col = {n: i for i, n in enumerate(FEATURES)}

    # 1. the shipped ranking against the two reciprocal rank fusions, dev (round 3) and locked
    systems = {"default": lambda q: F.rank(q, shipped), "rrf": lambda q: q.rrf, "rrf2": lambda q: q.rrf2}
    results: dict = {"libraries": {}}
    for lib, (dev_name, locked_name) in ROUND3.items():
        results["libraries"][lib] = {
            "dev": table([q for q in dev if q.set == dev_name], systems),
            "locked": table(load(args.data / locked_name), systems) if (args.data / f"{locked_name}.npz").exists() else None,
            "names": table([q for q in dev if q.set == lib and q.kind == "name"], systems) if any(q.kind == "name" for q in dev) else None,
        }

    # 2. each method alone and inside the fusion (cross-validated refits with and without it)
    base_held = cross_validated(dev, OLD)
    method_rows = []
    for title, features in METHODS.items():
        shipped_has_it = set(features) <= set(OLD)
        other = cross_validated(dev, tuple(f for f in OLD if f not in features) if shipped_has_it else OLD + features)
        with_it, without_it = (base_held, other) if shipped_has_it else (other, base_held)
        row: dict = {"method": title, "features": list(features)}
        for lib, (dev_name, _) in ROUND3.items():
            members = [q for q in dev if q.set == dev_name]
            alone = [metrics([int(q.rows[i]) for i in np.lexsort((q.rows, -q.X[:, col[features[0]]]))], q)["ndcg@10"] for q in members]
            a = [metrics(without_it[f"{q.set}:{q.qid}"], q)["ndcg@10"] for q in members]
            b = [metrics(with_it[f"{q.set}:{q.qid}"], q)["ndcg@10"] for q in members]
            row[lib] = {"alone": _mean(alone), "without": _mean(a), "with": _mean(b), "p": paired_p(b, a)}
        method_rows.append(row)
    results["methods"] = method_rows
    refit_held = cross_validated(dev, list(FEATURES))
    refit = {}
    for lib, (dev_name, _) in ROUND3.items():
        members = [q for q in dev if q.set == dev_name]
        a = [metrics(F.rank(q, shipped), q)["ndcg@10"] for q in members]
        b = [metrics(refit_held[f"{q.set}:{q.qid}"], q)["ndcg@10"] for q in members]
        refit[lib] = {"shipped": round(float(np.mean(a)), 3), "refit (CV)": round(float(np.mean(b)), 3), "p": paired_p(b, a)}
    results["refit"] = refit
    calibration = Path("eval/calibration.json")
    results["calibration"] = json.loads(calibration.read_text(encoding="utf-8"))["calibration"]["metrics"] if calibration.exists() else None

    write_report(args.report, render(results, f"python -m lab.ranking --data {args.data} --report {args.report}"), results)
    print(f"wrote {args.report}")


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 3) if len(values) else 0.0


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(results: dict, command: str) -> str:
    lines = [
        "Judged sets: eval/README.md (round 3: written and judged without sight of the ranker, pooled by three retrievers that share "
        "no code with it; one third locked). `default` is the shipped learned fusion (rag/search/ranker.json, fitted on the older dev "
        'sets: the round-3 sets are new to it); `rrf` reciprocal rank fusion of the four signals (fusion="rrf"); `rrf2` of full-text '
        "BM25 and section-level dense alone (the 30-line fusion). p: two-sided paired t-test of nDCG@10.",
        "",
    ]
    for lib, parts in results["libraries"].items():
        for split in ("dev", "locked"):
            data = parts[split]
            if data is None:
                continue
            lines += [
                f"## {lib}, {'round-3 dev' if split == 'dev' else 'locked test split'}",
                "",
                "| kind | queries | system | nDCG@10 | R@10 | MRR@10 | P@1 | R@100 | p vs rrf2 | p vs default |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for kind, row in data.items():
                for system in ("default", "rrf", "rrf2"):
                    m = row[system]
                    p_rrf2, p_default = _p(row["p_vs_rrf2"].get(system)), _p(row["p_vs_default"].get(system))
                    lines.append(
                        f"| {kind} | {row['queries']} | {system} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} | {m['mrr@10']:.3f} | "
                        f"{m['precision@1']:.3f} | {m['recall@100']:.3f} | {p_rrf2} | {p_default} |"
                    )
            lines.append("")
        if parts.get("names"):
            m = parts["names"]["all"]
            lines += [
                f"Known names on {lib} (the older dev set's name queries, {m['queries']}): "
                f"default nDCG@10 {m['default']['ndcg@10']:.3f}, "
                f"P@1 {m['default']['precision@1']:.3f}.",
                "",
            ]
    lines += [
        "## Methods measured this round",
        "",
        "Alone: the method's feature as the only ranking of the candidates. Inside the fusion: 5-fold cross-validated refits "
        "(every dev set in the training folds) with and without it; the shipped ranker keeps a method only where it gains on both "
        "libraries.",
        "",
        "| method | library | alone | fusion without | fusion with | p |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["methods"]:
        for lib in ROUND3:
            r = row[lib]
            lines.append(f"| {row['method']} | {lib} | {r['alone']:.3f} | {r['without']:.3f} | {r['with']:.3f} | {_p(r['p'])} |")
    lines += [
        "",
        "Refitting the whole fusion on every dev set (all features, constants by inner cross-validation), held out:",
        "",
        "| library | shipped | refit (CV) | p |",
        "|---|---|---|---|",
    ]
    for lib, r in results["refit"].items():
        lines.append(f"| {lib} | {r['shipped']:.3f} | {r['refit (CV)']:.3f} | {_p(r['p'])} |")
    if results.get("calibration"):
        lines += [
            "",
            "## The one score (calibration, held out; eval/calibration.md)",
            "",
            "| library | ECE top 10 | ECE top 1 | mean relevance top 1 | judged relevant top 1 | judged saying no good match "
            "| unanswerable saying no good match |",
            "|---|---|---|---|---|---|---|",
        ]
        for lib, m in results["calibration"]["cross_validated"].items():
            none = "-" if m["no_answer_no_good_match"] is None else f"{m['no_answer_no_good_match']:.0%}"
            lines.append(
                f"| {lib} | {m['ece_top10']:.3f} | {m['ece_top1']:.3f} | {m['mean_relevance_top1']:.3f} | "
                f"{m['judged_relevant_top1']:.3f} | "
                f"{m['judged_no_good_match']:.1%} | {none} |"
            )
    return markdown("Ranking, round 3", command, lines)


if __name__ == "__main__":
    main()
