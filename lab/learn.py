"""Fit the learned fusion (rag/search/learned.py) on judged dev sets with k-fold cross-validation.

    python -m lab.learn --set bmn:INDEX:eval/dev/bmn.jsonl --set commons-os:INDEX:eval/dev/commons-os.jsonl \\
        --set patterns:INDEX:eval/dev/patterns.jsonl [--folds 5] [--out rag/search/ranker.json] [--report eval/learned.md]

Every query of every set gets its candidates and features once (the same code the retriever runs). Each set
is split into `folds` folds by query; a model is fitted on the other folds of all sets together and
scores the held-out fold, so every figure in the report is cross-validated (no query is scored by weights
that saw it). The fit is coordinate ascent on mean nDCG@10 (Metzler & Croft 2007), each set weighing
equally, starting from the default convex fusion's score (weight 1, fixed) and learning corrections to it. The weights written with
--out are refitted on
all queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.common import command, markdown, parser, write_report
from rag.config import RetrieverSettings
from rag.evaluation.harness import parse_queries
from rag.search.learned import FEATURES, LinearRanker
from rag.search.metrics import dcg

K = 10
FIXED = "fused"  # the scale of the model: its weight stays 1
STEPS = (-1.0, -0.5, -0.25, -0.1, -0.05, 0.05, 0.1, 0.25, 0.5, 1.0)
PASSES = 4
MIN_GAIN = 0.001  # a step must raise the training objective this much (fewer, larger, better-supported moves)


@dataclass
class QueryData:
    set: str
    qid: str
    kind: str
    rows: np.ndarray  # candidate pattern rows
    X: np.ndarray  # features (len(rows), len(FEATURES))
    pinned: list[int]  # rows pinned first (names), in order
    baseline: list[int]  # the default retriever's ranking (rows)
    grades: dict[int, int]  # row -> grade (judged relevant only)
    ideal: float  # ideal DCG@10 from every judged grade


def metrics(ranking: Sequence[int], q: QueryData) -> dict[str, float]:
    top = list(ranking[:K])
    gains = [q.grades.get(r, 0) for r in top]
    relevant = len(q.grades)
    first = next((i for i, g in enumerate(gains) if g > 0), None)
    return {
        "ndcg@10": dcg(gains) / q.ideal if q.ideal > 0 else 0.0,
        "recall@10": sum(1 for g in gains if g > 0) / relevant if relevant else 0.0,
        "mrr@10": 1.0 / (first + 1) if first is not None else 0.0,
        "precision@1": 1.0 if gains and gains[0] > 0 else 0.0,
    }


def rank(q: QueryData, weights: np.ndarray) -> list[int]:
    scores = q.X @ weights
    order = np.lexsort((q.rows, -scores))
    pinned = set(q.pinned)
    return q.pinned + [int(q.rows[i]) for i in order if int(q.rows[i]) not in pinned]


def ndcg_of(q: QueryData, weights: np.ndarray) -> float:
    return metrics(rank(q, weights), q)["ndcg@10"]


def objective(queries: Sequence[QueryData], weights: np.ndarray) -> float:
    """Mean over sets of the set's mean nDCG@10 (each set weighs equally)."""
    by_set: dict[str, list[float]] = {}
    for q in queries:
        by_set.setdefault(q.set, []).append(ndcg_of(q, weights))
    return float(np.mean([np.mean(v) for v in by_set.values()]))


def fit(queries: Sequence[QueryData], start: np.ndarray | None = None) -> np.ndarray:
    weights = np.zeros(len(FEATURES), dtype=np.float32) if start is None else start.astype(np.float32).copy()
    fixed = FEATURES.index(FIXED)
    weights[fixed] = 1.0
    allx = np.concatenate([q.X for q in queries]) if queries else np.zeros((1, len(FEATURES)))
    scale = allx.std(axis=0) + 1e-6
    scale = scale[fixed] / scale  # a step moves a feature as much as the same step of the fixed one
    best = objective(queries, weights)
    for _ in range(PASSES):
        improved = False
        for j in range(len(FEATURES)):
            if j == fixed:
                continue
            for step in STEPS:
                trial = weights.copy()
                trial[j] += step * scale[j] * 0.2
                value = objective(queries, trial)
                if value > best + MIN_GAIN:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    return weights


def fit_pairwise(queries: Sequence[QueryData], c: float = 0.1, per_query: int = 400, seed: int = 5) -> np.ndarray:
    """RankNet-style linear model: logistic regression on feature differences of (better, worse) pairs
    within a query (grade 2 > 1 > 0 among the candidates), L2-regularised; each set weighs equally. The
    weights are rescaled so that the fused score's weight is 1 (the same scale as `fit`)."""
    from sklearn.linear_model import LogisticRegression

    D, w = _pairs(queries, per_query, seed)
    if not len(D):
        return np.eye(len(FEATURES), dtype=np.float32)[FEATURES.index(FIXED)]
    X = np.concatenate([D, -D])
    y = np.concatenate([np.ones(len(D)), np.zeros(len(D))])
    sw = np.concatenate([w, w])
    scale = X.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000)
    model.fit(X / scale, y, sample_weight=sw / sw.mean())
    w = model.coef_[0] / scale
    fixed = FEATURES.index(FIXED)
    return (w / w[fixed] if w[fixed] > 0 else w).astype(np.float32)


OFFSET_SCALE = 10.0  # the fused score's fixed coefficient in the offset fit (its pair differences are ~0.1)
OFFSET_L2 = 1.0  # ridge penalty on the corrections, relative to the mean pair loss


def _pairs(queries: Sequence[QueryData], per_query: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature differences (better minus worse) of judged pairs within each query, and pair weights that
    give every set the same total weight and every query of a set the same share."""
    rng = np.random.default_rng(seed)
    per_set: dict[str, int] = {}
    for q in queries:
        per_set[q.set] = per_set.get(q.set, 0) + 1
    diffs, weights = [], []
    for q in queries:
        grades = np.array([q.grades.get(int(r), 0) for r in q.rows])
        better, worse = np.nonzero(grades[:, None] > grades[None, :])
        if not len(better):
            continue
        if len(better) > per_query:
            pick = rng.choice(len(better), per_query, replace=False)
            better, worse = better[pick], worse[pick]
        diffs.append(q.X[better] - q.X[worse])
        weights.append(np.full(len(better), 1.0 / (per_set[q.set] * len(better))))
    if not diffs:
        return np.zeros((0, len(FEATURES))), np.zeros(0)
    w = np.concatenate(weights)
    return np.concatenate(diffs), w / w.sum()


def fit_offset(
    queries: Sequence[QueryData], scale: float = OFFSET_SCALE, l2: float = OFFSET_L2, per_query: int = 400, seed: int = 5
) -> np.ndarray:
    """Pairwise logistic loss with the fused score as a fixed offset: logit = scale x d_fused + w . d_x,
    ridge-penalised w on standardised features. The corrections only move a pair when the judged data
    outweigh the fused score's own difference, so signals the fused score already weighs well (names)
    keep their say. Returns weights on the fused scale (fused = 1)."""
    from scipy.optimize import minimize

    D, sw = _pairs(queries, per_query, seed)
    fixed = FEATURES.index(FIXED)
    out = np.zeros(len(FEATURES), dtype=np.float32)
    out[fixed] = 1.0
    if not len(D):
        return out
    free = [j for j in range(len(FEATURES)) if j != fixed]
    std = D[:, free].std(axis=0) + 1e-6
    Z = D[:, free] / std
    offset = scale * D[:, fixed]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = offset + Z @ w
        value = np.sum(sw * np.logaddexp(0.0, -m)) + l2 * 1e-3 * (w @ w)
        grad = -(Z.T @ (sw / (1.0 + np.exp(m)))) + 2 * l2 * 1e-3 * w
        return float(value), grad

    w = minimize(loss, np.zeros(len(free)), jac=True, method="L-BFGS-B").x
    out[free] = (w / std) / scale
    return out


OFFSET_GRID = tuple((scale, l2) for scale in (3.0, 10.0, 30.0) for l2 in (0.1, 1.0, 10.0))
INNER_FOLDS = 4


def fit_offset_tuned(queries: Sequence[QueryData]) -> np.ndarray:
    """`fit_offset` with its two constants chosen by an inner cross-validation on `queries` alone (so the
    outer cross-validation's held-out figures stay honest: nested CV), then refitted on all of them."""
    fold = folds_of(queries, INNER_FOLDS, seed=29)
    best, chosen = -1.0, (OFFSET_SCALE, OFFSET_L2)
    for scale, l2 in OFFSET_GRID:
        held: dict[str, list[int]] = {}
        for f in range(INNER_FOLDS):
            train = [q for q, g in zip(queries, fold) if g != f]
            weights = fit_offset(train, scale, l2)
            for q, g in zip(queries, fold):
                if g == f:
                    held[f"{q.set}:{q.qid}"] = rank(q, weights)
        by_set: dict[str, list[float]] = {}
        for q in queries:
            by_set.setdefault(q.set, []).append(metrics(held[f"{q.set}:{q.qid}"], q)["ndcg@10"])
        value = float(np.mean([np.mean(v) for v in by_set.values()]))
        if value > best + 1e-9:
            best, chosen = value, (scale, l2)
    CHOSEN.append(chosen)
    return fit_offset(queries, *chosen)


CHOSEN: list[tuple[float, float]] = []  # the (scale, l2) each fit_offset_tuned call chose, for the report


def folds_of(queries: Sequence[QueryData], k: int, seed: int = 13) -> list[int]:
    rng = np.random.default_rng(seed)
    fold = [0] * len(queries)
    by_set: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_set.setdefault(q.set, []).append(i)
    for members in by_set.values():
        perm = rng.permutation(len(members))
        for n, m in enumerate(perm):
            fold[members[m]] = n % k
    return fold


def cross_validate(queries: Sequence[QueryData], k: int, method: str = "ascent") -> tuple[dict[str, list[int]], list[np.ndarray]]:
    """Held-out rankings per qid (set:qid) and the weights of each fold."""
    fold = folds_of(queries, k)
    held: dict[str, list[int]] = {}
    models = []
    for f in range(k):
        train = [q for q, g in zip(queries, fold) if g != f]
        weights = METHODS[method](train)
        models.append(weights)
        for q, g in zip(queries, fold):
            if g == f:
                held[f"{q.set}:{q.qid}"] = rank(q, weights)
    return held, models


METHODS = {"ascent": lambda qs: fit(qs), "pairwise": lambda qs: fit_pairwise(qs), "offset": lambda qs: fit_offset_tuned(qs)}


def extract(name: str, index_dir: Path, queries_path: Path, embedder) -> list[QueryData]:
    from rag.index.search_index import SearchIndex
    from rag.records.request import SearchRequest
    from rag.search.retriever import Retriever

    index = SearchIndex.open(index_dir)
    retriever = Retriever(index, embedder, RetrieverSettings())
    queries, problems, _ = parse_queries(queries_path)
    if problems:
        raise SystemExit(f"{queries_path}: {problems[0]}")
    vectors = embedder.encode([q.text for q in queries])
    out = []
    for q, vector in zip(queries, vectors):
        query = retriever.prepare(SearchRequest(q.text, 10, 0, q.filters)).with_vector(vector)
        runs = retriever.signal_runs(query)
        fused, pinned = retriever.fuse(runs)
        rows, X = retriever.candidate_features(query, runs, fused)
        pinned_set = set(pinned)
        baseline = pinned + [r for r, _ in fused if r not in pinned_set]
        grades = {index.slug_row[s]: g for s, g in q.relevant.items() if s in index.slug_row and g > 0}
        ideal = dcg(sorted(grades.values(), reverse=True)[:K])
        out.append(QueryData(name, q.qid, q.kind, rows, X, pinned, baseline, grades, ideal))
    return out


def summarise(queries: Sequence[QueryData], rankings: dict[str, list[int]]) -> dict[str, dict[str, dict[str, float]]]:
    """{set: {kind or 'all': {metric: mean}}}."""
    table: dict[str, dict[str, list[dict[str, float]]]] = {}
    for q in queries:
        m = metrics(rankings[f"{q.set}:{q.qid}"], q)
        for key in ("all", q.kind):
            table.setdefault(q.set, {}).setdefault(key, []).append(m)
    return {
        s: {k: {name: float(np.mean([m[name] for m in ms])) for name in ms[0]} | {"n": len(ms)} for k, ms in kinds.items()}
        for s, kinds in table.items()
    }


def report(
    queries: Sequence[QueryData], held: dict[str, list[int]], models: list[np.ndarray], final: np.ndarray, k: int, command: str
) -> str:
    base = summarise(queries, {f"{q.set}:{q.qid}": q.baseline for q in queries})
    learned = summarise(queries, held)
    lines = [
        f"{k}-fold cross-validation per set (folds by query, a model fitted on the other folds of every set scores the held-out fold).",
        "Baseline: the convex fusion of the default retriever on the same candidates. Metrics at 10; nDCG with linear gains.",
        "",
    ]
    lines += [
        "| set | kind | n | nDCG@10 base | nDCG@10 learned | R@10 base | R@10 learned | MRR@10 base | MRR@10 learned | P@1 base | P@1 "
        "learned |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in base:
        for kind in ["all"] + sorted(x for x in base[s] if x != "all"):
            b, lr = base[s][kind], learned[s][kind]
            lines.append(
                f"| {s} | {kind} | {b['n']} | {b['ndcg@10']:.3f} | {lr['ndcg@10']:.3f} | {b['recall@10']:.3f} | {lr['recall@10']:.3f} | "
                f"{b['mrr@10']:.3f} | {lr['mrr@10']:.3f} | {b['precision@1']:.3f} | {lr['precision@1']:.3f} |"
            )
    if CHOSEN:
        lines += [
            "",
            "Constants chosen by the inner cross-validation (scale, l2) per outer fold, then for the final fit: "
            + ", ".join(f"({a:g}, {b:g})" for a, b in CHOSEN),
        ]
    lines += [
        "",
        "Weights per fold (features of rag/search/learned.py) and refitted on all queries:",
        "",
        "| feature | " + " | ".join(f"fold {i + 1}" for i in range(len(models))) + " | all |",
        "|---|" + "---:|" * (len(models) + 1),
    ]
    for j, name in enumerate(FEATURES):
        lines.append(f"| {name} | " + " | ".join(f"{m[j]:.3f}" for m in models) + f" | {final[j]:.3f} |")
    return markdown("Learned fusion: cross-validated", command, lines)


def main(argv: Sequence[str] | None = None) -> None:
    options = parser(__doc__)
    options.add_argument("--folds", type=int, default=5)
    options.add_argument("--out", type=Path, help="write the weights refitted on all queries (rag/search/ranker.json)")
    options.add_argument("--report", type=Path)
    options.add_argument(
        "--method", choices=sorted(METHODS), default="ascent", help="coordinate ascent on nDCG@10, or pairwise logistic regression"
    )
    options.add_argument("--features-cache", type=Path, help="pickle of the extracted features (re-fits skip extraction)")
    args = options.parse_args(argv)
    import pickle

    if args.features_cache and args.features_cache.exists():
        queries = pickle.loads(args.features_cache.read_bytes())
    else:
        from rag.embedding.minilm import MiniLMEncoder

        embedder = MiniLMEncoder()
        queries = []
        for s in args.set:
            queries += extract(s.name, s.index_dir, s.queries, embedder)
        if args.features_cache:
            args.features_cache.write_bytes(pickle.dumps(queries))
    held, models = cross_validate(queries, args.folds, args.method)
    final = METHODS[args.method](queries)
    text = report(
        queries, held, models, final, args.folds, command("lab.learn", args.set, f"--folds {args.folds}", f"--method {args.method}")
    )
    print(text)
    if args.report:
        write_report(args.report, text)
    if args.out:
        LinearRanker({n: float(w) for n, w in zip(FEATURES, final) if w != 0}, source=str(args.report or "")).save(args.out)


if __name__ == "__main__":
    main()
