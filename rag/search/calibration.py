"""One score: every hit's `relevance` is a calibrated, monotone function of the score that ranked it.

relevance_i = sigmoid(w . h_i + v . q + bias), where the hit features h_i never rise down a result list and weigh only
up (w >= 0), and q holds features of the query, the same for every hit of one list:
- h_i: `score` (the final ranking score: the learned fusion's), `gap` (score minus the best hit's: 0 for the best, then
  negative), and `first_small` / `first_large` (1 / rank in a library under or over SMALL_LIBRARY patterns: the top of a
  small library's list is right more often than its score alone says);
- q: `top_dense` (the best dense score among the hits: its best chunk's cosine plus the support of its next chunks, the
  same model and scale everywhere), `top_coverage` (the largest idf-weighted share of the query's words found in a hit's
  text), `top_name` (the best title or alias similarity: 0 when the query names nothing), `log_patterns` (log10 of the
  library's patterns) and `log_words` (log10 of the query's analyzed words); the last two weigh either way.
A query with weak absolute evidence (xyzzy, or a question the library does not cover) gets low relevance on every hit,
while within a list relevance falls with the score and the rank. A pinned hit (the query is its name) has relevance
`pinned` (the share of pinned hits judged relevant) when that is higher; going down the list relevance never rises, so
a lower hit never shows a higher relevance than one above it. The weights are fitted by logistic regression on judged
queries plus queries with no answer, cross-validated, by `rag fit` for a library or `python -m lab.calibrate` for the
shipped `calibration.json`; a result list says `no_good_match` when its best relevance is below `threshold`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.search.query import PreparedQuery
from rag.search.signals.base import SignalRun

HIT_FEATURES: tuple[str, ...] = ("score", "gap", "first_small", "first_large")
QUERY_FEATURES: tuple[str, ...] = ("top_dense", "top_coverage", "top_name", "log_patterns", "log_words")
FEATURES: tuple[str, ...] = HIT_FEATURES + QUERY_FEATURES
FREE = frozenset({"log_patterns", "log_words"})  # may weigh either way; the evidence and the hit features only up
SMALL_LIBRARY = 500  # patterns: bmn (60) and patterns/ (25) are small, commons-os (3,614) is large
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True, slots=True)
class Calibration:
    weights: dict[str, float]  # on FEATURES (hit features >= 0: relevance falls with the score and the rank)
    bias: float
    pinned: float  # relevance of a hit pinned first because the query is its name (the share of them judged relevant)
    threshold: float  # a result list whose best hit's relevance is below this says no_good_match
    fusion: str = "learned"  # the fusion whose scores it was fitted on
    source: str = ""  # how it was fitted (command and data)
    metrics: dict = field(default_factory=dict)  # the cross-validated figures behind it

    def relevance(
        self, scores: Sequence[float] | np.ndarray, pinned: Sequence[bool] | np.ndarray, query: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Relevance of a result list best first: `scores` its ranking scores, `pinned` which hits are pinned, `query` the
        list's query features (QUERY_FEATURES). Never rises down the list."""
        values = np.asarray(scores, dtype=np.float64)
        if not len(values):
            return np.zeros(0)
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES], dtype=np.float64)
        z = hit_features(values, np.asarray(query, dtype=np.float64)) @ w + self.bias
        out = 1.0 / (1.0 + np.exp(-z))
        out = np.where(np.asarray(pinned, dtype=bool), np.maximum(out, self.pinned), out)
        return np.minimum.accumulate(out)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**data)

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def hit_features(scores: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(hits, len(FEATURES)): each hit's HIT_FEATURES beside the list's QUERY_FEATURES (`query`)."""
    n = len(scores)
    small = query[QUERY_FEATURES.index("log_patterns")] < np.log10(SMALL_LIBRARY)
    first = 1.0 / np.arange(1, n + 1)
    gap = scores - scores.max() if n else scores
    hits = np.stack([scores, gap, first * small, first * (not small)], axis=1)
    return np.hstack([hits, np.broadcast_to(query, (n, len(QUERY_FEATURES)))])


def query_features(rows: Sequence[int] | np.ndarray, runs: Mapping[str, SignalRun], query: PreparedQuery, n_patterns: int) -> np.ndarray:
    """The QUERY_FEATURES of a result list (its pattern rows best first)."""
    at = np.asarray(list(rows), dtype=np.int64)
    out = np.zeros(len(QUERY_FEATURES), dtype=np.float64)
    out[3] = math.log10(max(n_patterns, 1))
    out[4] = math.log10(max(len(query.tokens), 1))
    if not len(at):
        return out
    dense = runs.get("dense")
    if dense is not None and len(dense.rows):
        by_row = dict(zip(dense.rows.tolist(), dense.scores.tolist()))
        floor = float(dense.scores[-1])  # a pattern beyond the candidates scores at most the last one
        out[0] = max(by_row.get(int(r), floor) for r in at)
    if query.tokens:
        out[1] = float(query.coverage()[at].max())
    names = runs.get("names")
    if names is not None and len(names.rows):
        by_row = dict(zip(names.rows.tolist(), names.scores.tolist()))
        out[2] = max(by_row.get(int(r), 0.0) for r in at)
    return out


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    free: Sequence[bool] | None = None,
    l2: float = 1e-3,
    iterations: int = 200,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Logistic regression whose weights are non-negative except where `free` (projected Newton steps); (weights, bias)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64) * n / np.sum(sample_weight)
    bounded = np.array([not f for f in free], dtype=bool) if free is not None else np.ones(d, dtype=bool)
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    active = np.ones(d + 1, dtype=bool)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (sw * (p - y)) / n
        grad[:d] += l2 * theta[:d]
        hess = (design * (sw * p * (1 - p))[:, None]).T @ design / n
        hess[:d, :d] += l2 * np.eye(d)
        free_now = active.copy()
        step = np.zeros(d + 1)
        step[free_now] = np.linalg.solve(hess[np.ix_(free_now, free_now)] + 1e-9 * np.eye(int(free_now.sum())), grad[free_now])
        theta = theta - step
        negative = (theta[:d] < 0) & bounded
        if negative.any():
            theta[:d][negative] = 0.0
            active[:d][negative] = False
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:d], float(theta[d])


def logloss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(predicted: Sequence[float] | np.ndarray, observed: Sequence[float] | np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width bins of the prediction, weighted by the bins' sizes."""
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(observed, dtype=np.float64)
    if not len(p):
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.sum() * abs(p[inside].mean() - y[inside].mean())
    return float(total / len(p))
