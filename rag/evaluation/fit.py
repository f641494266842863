"""Fitting the ranking to judged queries: the learned fusion's weights and the relevance calibration, cross-validated.

Used by `rag fit` (a user's library and its judged queries) and by the lab (`python -m lab.learn`, `lab.calibrate`), so
the shipped defaults and a library's own fit come out of the same machinery.

- `extract`: for every judged query, the learned fusion's candidates with every feature of rag/search/learned.py, the
  pinned rows, and what the calibration reads (each candidate's dense score, the library's size).
- `fit_ranker`: a pairwise logistic loss over judged pairs (grade 2 > 1 > 0) with the default fusion's score as a fixed
  offset, ridge-penalised corrections on standardised features; its two constants (the offset's scale and the penalty)
  are chosen by an inner cross-validation on the training queries alone, so an outer cross-validation stays honest.
- `fit_calibration`: logistic regression of "judged relevant" (grade >= 1) on the final score and the query's absolute
  evidence (rag/search/calibration.py), over the top 10 hits of every judged query and of queries without an answer;
  the no-good-match threshold is the `pass_rate` quantile of the judged queries' best relevance.
- `cross_validate`: held-out rankings and relevances of every query, each from a fit that never saw it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.records.request import SearchRequest
from rag.search.calibration import FEATURES as CALIBRATION_FEATURES
from rag.search.calibration import FREE, QUERY_FEATURES, Calibration, expected_calibration_error, fit_logistic, hit_features, logloss
from rag.search.learned import FEATURES, LinearRanker
from rag.search.metrics import at_k

K = 10
FIXED = "fused"  # the model's scale: the default fusion's score keeps weight 1
OFFSET_GRID = tuple((scale, l2) for scale in (3.0, 10.0, 30.0) for l2 in (0.1, 1.0, 10.0))
INNER_FOLDS = 4
PAIRS_PER_QUERY = 400
PASS_RATE = 0.03  # the share of judged queries allowed to say no_good_match (the issue asks at most 5%)


@dataclass
class FitQuery:
    set: str
    qid: str
    kind: str
    rows: np.ndarray  # candidate pattern rows
    X: np.ndarray  # (len(rows), len(FEATURES))
    pinned: list[int]
    grades: dict[int, int]  # row -> grade, judged relevant only (empty for a query without an answer)
    dense: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per candidate: its dense run score (or the run's floor)
    n_patterns: int = 0
    answered: bool = True  # False: a query with no answer in the library (calibration negatives)
    words: int = 1  # the query's analyzed words

    @property
    def ideal(self) -> float:
        return sum(g / math.log2(i + 2) for i, g in enumerate(sorted(self.grades.values(), reverse=True)[:K]))


def extract(name: str, retriever, queries: Sequence, answered: bool = True) -> list[FitQuery]:
    """`queries`: rag.evaluation.harness.Query records. `retriever` computes every feature (Retriever(features=...))."""
    index = retriever.index
    out: list[FitQuery] = []
    for q in queries:
        prepared = retriever.encode([retriever.prepare(SearchRequest(q.text, 100, 0, q.filters))])[0]
        runs = retriever.signal_runs(prepared)
        fused, pinned = retriever.fuse(runs)
        rows, X = retriever.candidate_features(prepared, runs, fused)
        dense = runs.get("dense")
        scores = dict(zip(dense.rows.tolist(), dense.scores.tolist())) if dense is not None and len(dense.rows) else {}
        floor = float(dense.scores[-1]) if scores else 0.0
        grades = {index.slug_row[s]: g for s, g in q.relevant.items() if s in index.slug_row and g > 0}
        out.append(
            FitQuery(
                name,
                q.qid,
                q.kind,
                rows,
                X,
                pinned,
                grades,
                np.array([scores.get(int(r), floor) for r in rows]),
                len(index.patterns),
                answered,
                len(prepared.tokens),
            )
        )
    return out


# -- the ranker --------------------------------------------------------------------------------------------------
def rank(q: FitQuery, weights: np.ndarray) -> list[int]:
    """Pinned rows first, then the candidates by `X @ weights` (ties by row): the retriever's order."""
    order = np.lexsort((q.rows, -(q.X @ weights)))
    pinned = set(q.pinned)
    return q.pinned + [int(q.rows[i]) for i in order if int(q.rows[i]) not in pinned]


def weights_of(ranker: LinearRanker) -> np.ndarray:
    return np.array([ranker.weights.get(name, 0.0) for name in FEATURES], dtype=np.float64)


def ndcg(q: FitQuery, weights: np.ndarray) -> float:
    return at_k(rank(q, weights), q.grades, K)["ndcg@10"]


def _pairs(queries: Sequence[FitQuery], features: Sequence[int], seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
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
        if len(better) > PAIRS_PER_QUERY:
            pick = rng.choice(len(better), PAIRS_PER_QUERY, replace=False)
            better, worse = better[pick], worse[pick]
        diffs.append(q.X[better][:, features] - q.X[worse][:, features])
        weights.append(np.full(len(better), 1.0 / (per_set[q.set] * len(better))))  # every set, every query weighs alike
    if not diffs:
        return np.zeros((0, len(features))), np.zeros(0)
    w = np.concatenate(weights)
    return np.concatenate(diffs), w / w.sum()


def fit_offset(queries: Sequence[FitQuery], features: Sequence[str], scale: float, l2: float) -> np.ndarray:
    """Pairwise logistic loss, logit = scale x d_fused + w . d_x over `features`, ridge on standardised features.
    Returns weights over FEATURES on the fused scale (fused = 1)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    fixed = FEATURES.index(FIXED)
    free = [FEATURES.index(f) for f in features if f != FIXED]
    out = np.zeros(len(FEATURES))
    out[fixed] = 1.0
    D, sw = _pairs(queries, [fixed, *free])
    if not len(D) or not free:
        return out
    std = D[:, 1:].std(axis=0) + 1e-6
    Z = D[:, 1:] / std
    offset = scale * D[:, 0]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = offset + Z @ w
        value = np.sum(sw * np.logaddexp(0.0, -m)) + l2 * 1e-3 * (w @ w)
        grad = -(Z.T @ (sw * expit(-m))) + 2 * l2 * 1e-3 * w
        return float(value), grad

    w = minimize(loss, np.zeros(len(free)), jac=True, method="L-BFGS-B").x
    out[free] = (w / std) / scale
    return out


def folds_of(queries: Sequence[FitQuery], k: int, seed: int = 13) -> list[int]:
    """Fold of each query: every set split evenly, so each fold holds its share of every library."""
    rng = np.random.default_rng(seed)
    fold = [0] * len(queries)
    by_set: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        by_set.setdefault(q.set, []).append(i)
    for members in by_set.values():
        for n, m in enumerate(rng.permutation(len(members))):
            fold[members[m]] = n % k
    return fold


def set_mean(queries: Sequence[FitQuery], score: Callable[[FitQuery], float]) -> float:
    by_set: dict[str, list[float]] = {}
    for q in queries:
        by_set.setdefault(q.set, []).append(score(q))
    return float(np.mean([np.mean(v) for v in by_set.values()])) if by_set else 0.0


def fit_ranker(queries: Sequence[FitQuery], feature_sets: Sequence[Sequence[str]]) -> tuple[np.ndarray, dict]:
    """The best of `feature_sets` x OFFSET_GRID by inner cross-validation on `queries` alone, refitted on all of them."""
    answered = [q for q in queries if q.grades]
    fold = folds_of(answered, INNER_FOLDS, seed=29)
    best, chosen = -1.0, (list(feature_sets[0]), *OFFSET_GRID[0])
    for features in feature_sets:
        for scale, l2 in OFFSET_GRID:
            held: dict[int, float] = {}
            for f in range(INNER_FOLDS):
                weights = fit_offset([q for q, g in zip(answered, fold) if g != f], features, scale, l2)
                for i, (q, g) in enumerate(zip(answered, fold)):
                    if g == f:
                        held[i] = ndcg(q, weights)
            value = set_mean(answered, lambda q, held=held: held[answered.index(q)])
            if value > best + 1e-9:
                best, chosen = value, (list(features), scale, l2)
    features, scale, l2 = chosen
    return fit_offset(answered, features, scale, l2), {"features": features, "scale": scale, "l2": l2, "inner_ndcg": round(best, 4)}


# -- the calibration -------------------------------------------------------------------------------------------
@dataclass
class Example:
    """The top hits of one query under one ranking, as the calibration reads them."""

    set: str
    qid: str
    answered: bool
    scores: np.ndarray
    pinned: np.ndarray
    query: np.ndarray  # rag.search.calibration.QUERY_FEATURES
    labels: np.ndarray  # 1 when judged relevant (grade >= 1)


def examples(queries: Sequence[FitQuery], weights: np.ndarray, depth: int = K) -> list[Example]:
    col = {name: i for i, name in enumerate(FEATURES)}
    out = []
    for q in queries:
        order = rank(q, weights)[:depth]
        if not order:
            continue
        at = {int(r): i for i, r in enumerate(q.rows.tolist())}
        idx = [at[r] for r in order]
        scores = q.X[idx] @ weights
        features = np.array(
            [
                q.dense[idx].max(),
                q.X[idx, col["coverage"]].max(),
                q.X[idx, col["names"]].max(),
                math.log10(max(q.n_patterns, 1)),
                math.log10(max(q.words, 1)),
            ]
        )
        labels = np.array([1.0 if q.grades.get(r, 0) >= 1 else 0.0 for r in order])
        out.append(Example(q.set, q.qid, q.answered, scores, np.array([r in set(q.pinned) for r in order]), features, labels))
    return out


def fit_calibration(train: Sequence[Example], pass_rate: float = PASS_RATE, fusion: str = "learned") -> Calibration:
    x_parts, y_parts, w_parts = [], [], []
    library = QUERY_FEATURES.index("log_patterns")  # a library is known here by its size
    per_library: dict[float, int] = {}
    for e in train:
        per_library[round(float(e.query[library]), 6)] = per_library.get(round(float(e.query[library]), 6), 0) + 1
    for e in train:
        keep = ~e.pinned  # a pinned hit's relevance is the `pinned` constant
        x_parts.append(hit_features(e.scores, e.query)[keep])
        y_parts.append(e.labels[keep])
        w_parts.append(np.full(int(keep.sum()), 1.0 / per_library[round(float(e.query[library]), 6)]))  # every library weighs alike
    x = np.concatenate(x_parts) if x_parts else np.zeros((0, len(CALIBRATION_FEATURES)))
    y = np.concatenate(y_parts) if y_parts else np.zeros(0)
    free = [name in FREE for name in CALIBRATION_FEATURES]
    weights, bias = (
        fit_logistic(x, y, free, sample_weight=np.concatenate(w_parts)) if len(y) else (np.zeros(len(CALIBRATION_FEATURES)), 0.0)
    )
    pinned_labels = [e.labels[i] for e in train for i in range(len(e.scores)) if e.pinned[i]]
    pinned = (sum(pinned_labels) + 1.0) / (len(pinned_labels) + 2.0)  # Laplace-smoothed share judged relevant
    calibration = Calibration(dict(zip(CALIBRATION_FEATURES, map(float, weights))), bias, pinned, 0.0, fusion)
    tops = [float(relevances(calibration, e)[0]) for e in train if e.answered]
    threshold = float(np.quantile(tops, pass_rate)) if tops else 0.5
    return Calibration(calibration.weights, bias, pinned, threshold, fusion)


def relevances(calibration: Calibration, e: Example) -> np.ndarray:
    return calibration.relevance(e.scores, e.pinned, e.query)


def calibration_figures(pairs: Sequence[tuple[Example, np.ndarray]], threshold: float) -> dict:
    """ECE over the top-10 hits and over the top hit, log loss, and the no-good-match rates, of (example, relevance) pairs."""
    answered = [(e, r) for e, r in pairs if e.answered]
    p_all = np.concatenate([r for _, r in answered]) if answered else np.zeros(0)
    y_all = np.concatenate([e.labels for e, _ in answered]) if answered else np.zeros(0)
    p_top = np.array([r[0] for _, r in answered])
    y_top = np.array([e.labels[0] for e, _ in answered])
    none = [r for e, r in pairs if not e.answered]
    return {
        "queries": len(answered),
        "ece_top10": round(expected_calibration_error(p_all, y_all), 4),
        "ece_top1": round(expected_calibration_error(p_top, y_top), 4),
        "mean_relevance_top1": round(float(p_top.mean()), 4) if len(p_top) else 0.0,
        "judged_relevant_top1": round(float(y_top.mean()), 4) if len(y_top) else 0.0,
        "logloss_top10": round(logloss(p_all, y_all), 4) if len(p_all) else 0.0,
        "judged_no_good_match": round(float(np.mean(p_top < threshold)), 4) if len(p_top) else 0.0,
        "no_answer_queries": len(none),
        "no_answer_no_good_match": round(float(np.mean([r[0] < threshold for r in none])), 4) if none else None,
    }


def cross_validate(
    queries: Sequence[FitQuery], fit: Callable[[Sequence[FitQuery]], tuple[np.ndarray, Calibration]], k: int = 5, seed: int = 13
) -> tuple[dict[str, list[int]], list[tuple[Example, np.ndarray]]]:
    """Held-out rankings ("set:qid" -> rows) and held-out (example, relevance) pairs of every query, each from a fit on
    the other folds."""
    fold = folds_of(queries, k, seed)
    held: dict[str, list[int]] = {}
    pairs: list[tuple[Example, np.ndarray]] = []
    for f in range(k):
        weights, calibration = fit([q for q, g in zip(queries, fold) if g != f])
        test = [q for q, g in zip(queries, fold) if g == f]
        for q in test:
            held[f"{q.set}:{q.qid}"] = rank(q, weights)
        pairs += [(e, relevances(calibration, e)) for e in examples(test, weights)]
    return held, pairs


# -- a library's own fit (`rag fit`) -------------------------------------------------------------------------------
MIN_QUERIES = 20  # fewer judged queries cannot show a difference worth shipping
SIGNIFICANCE = 0.05  # the paired t-test's p-value a fit must reach to replace the defaults


@dataclass
class LibraryFit:
    """What `rag fit` found: held-out figures of the defaults and of the fit, the paired test, and the fitted ranking."""

    queries: int
    before: dict[str, float]  # the defaults (the shipped ranker and calibration), mean per metric
    after: dict[str, float]  # the fit, held out (nested cross-validation)
    p_value: float | None
    accepted: bool
    reason: str
    ranker: dict[str, float]  # the weights refitted on every query (FEATURES -> weight)
    calibration: Calibration
    chosen: dict  # the feature set and constants the inner cross-validation chose
    calibration_figures: dict  # held-out ECE and no-good-match rates of the fitted calibration

    def to_dict(self) -> dict:
        return {
            "queries": self.queries,
            "before": self.before,
            "after": self.after,
            "p_value": self.p_value,
            "accepted": self.accepted,
            "reason": self.reason,
            "chosen": self.chosen,
            "calibration_figures": self.calibration_figures,
        }


def _means(queries: Sequence[FitQuery], rankings: Sequence[list[int]]) -> dict[str, float]:
    rows = [at_k(r, q.grades, K) for q, r in zip(queries, rankings)]
    return {metric: round(float(np.mean([m[metric] for m in rows])), 4) for metric in ("ndcg@10", "recall@10", "mrr@10", "precision@1")}


def fit_library(queries: Sequence[FitQuery], default: LinearRanker, folds: int = 5) -> LibraryFit:
    """Nested cross-validation of the fit against the defaults on one library's judged queries; the fit is accepted
    only when its held-out nDCG@10 beats the defaults' with p < SIGNIFICANCE (paired t-test)."""
    from scipy.stats import ttest_rel

    answered = [q for q in queries if q.grades]
    base = weights_of(default)
    feature_sets = [sorted(default.active | {FIXED}), list(FEATURES)]
    chosen: dict = {}

    def fit_both(train: Sequence[FitQuery]) -> tuple[np.ndarray, Calibration]:
        weights, info = fit_ranker(train, feature_sets)
        chosen.update(info)
        return weights, fit_calibration(examples(train, weights))

    held, pairs = cross_validate(answered, fit_both, k=folds) if len(answered) >= MIN_QUERIES else ({}, [])
    before = _means(answered, [rank(q, base) for q in answered])
    if len(answered) < MIN_QUERIES:
        weights = base
        return LibraryFit(
            len(answered),
            before,
            before,
            None,
            False,
            f"only {len(answered)} judged queries; a fit needs {MIN_QUERIES}",
            dict(zip(FEATURES, map(float, weights))),
            fit_calibration(examples(queries, weights)),
            {},
            {},
        )
    after_rankings = [held[f"{q.set}:{q.qid}"] for q in answered]
    after = _means(answered, after_rankings)
    old = [at_k(rank(q, base), q.grades, K)["ndcg@10"] for q in answered]
    new = [at_k(r, q.grades, K)["ndcg@10"] for q, r in zip(answered, after_rankings)]
    p_value = float(ttest_rel(new, old).pvalue) if np.any(np.array(new) != np.array(old)) else 1.0
    gain = after["ndcg@10"] - before["ndcg@10"]
    accepted = gain > 0 and p_value < SIGNIFICANCE
    reason = f"held-out nDCG@10 {before['ndcg@10']:.3f} -> {after['ndcg@10']:.3f} ({gain:+.3f}, paired t-test p = {p_value:.3g})" + (
        "" if accepted else "; not better than the defaults with p < 0.05, so the defaults stay"
    )
    weights, info = fit_ranker(answered, feature_sets)
    calibration = fit_calibration(examples(list(queries), weights))
    threshold = calibration.threshold
    figures = calibration_figures(pairs, threshold)
    return LibraryFit(
        len(answered), before, after, p_value, accepted, reason, dict(zip(FEATURES, map(float, weights))), calibration, info, figures
    )
