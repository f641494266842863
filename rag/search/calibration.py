"""An absolute, calibrated `relevance` in [0, 1] for every hit, and the "no good match" decision.

Fused scores are min-max normalized per query, so the best hit of any query scores high, even of
"xyzzy plugh". Relevance is instead a logistic model over absolute evidence that means the same in every
query and library:
- `dense`: the pattern's dense score (its best chunk's cosine to the query, plus the support of its next
  chunks; the same model everywhere, so the same scale everywhere);
- `coverage`: the idf-weighted share of the query's words found in the pattern's text (BM25's own idf;
  an unknown word counts as the rarest);
- `name`: the similarity of the query to the pattern's title or an alias (0 when it is not a name).
The weights, the intercept and the no-good-match threshold are fitted on judged dev queries plus a set of
queries with no answer (`python -m lab.calibrate`, k-fold cross-validated; eval/calibration.md),
and shipped as `calibration.json` beside this module. Weights are constrained to be non-negative, so
relevance is monotone in every kind of evidence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.search.query import PreparedQuery
from rag.search.signals.base import SignalRun

FEATURES: tuple[str, ...] = ("dense", "coverage", "name")
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True, slots=True)
class Calibration:
    weights: dict[str, float]
    bias: float
    threshold: float  # a result set whose best hit's relevance is below this says no_good_match
    source: str = ""  # how it was fitted (command and data)
    metrics: dict = field(default_factory=dict)  # the cross-validated figures behind it

    def relevance(self, features: np.ndarray) -> np.ndarray:
        """features: (n, len(FEATURES)) -> (n,) probabilities."""
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES], dtype=np.float64)
        z = self.bias + np.asarray(features, dtype=np.float64) @ w
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**data)

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def features(rows: Sequence[int], runs: Mapping[str, SignalRun], query: PreparedQuery) -> np.ndarray:
    """(len(rows), len(FEATURES)) absolute evidence of each pattern row for this query."""
    at = np.asarray(list(rows), dtype=np.int64)
    out = np.zeros((len(at), len(FEATURES)), dtype=np.float32)
    if not len(at):
        return out
    dense = runs.get("dense")
    if dense is not None and len(dense.rows):
        floor = float(dense.scores[-1])  # a pattern beyond the candidates scores at most the last one
        by_row = dict(zip(dense.rows.tolist(), dense.scores.tolist()))
        out[:, 0] = [by_row.get(int(r), floor) for r in at]
    if query.tokens:
        out[:, 1] = query.coverage()[at]
    names = runs.get("names")
    if names is not None and len(names.rows):
        by_row = dict(zip(names.rows.tolist(), names.scores.tolist()))
        out[:, 2] = [by_row.get(int(r), 0.0) for r in at]
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 200) -> tuple[np.ndarray, float]:
    """Logistic regression with non-negative weights (projected Newton steps); returns (weights, bias)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    active = np.ones(d + 1, dtype=bool)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - y) / n
        grad[:d] += l2 * theta[:d]
        hess = (design * (p * (1 - p))[:, None]).T @ design / n
        hess[:d, :d] += l2 * np.eye(d)
        free = active.copy()
        step = np.zeros(d + 1)
        step[free] = np.linalg.solve(hess[np.ix_(free, free)] + 1e-9 * np.eye(int(free.sum())), grad[free])
        theta = theta - step
        negative = theta[:d] < 0
        if negative.any():
            theta[:d][negative] = 0.0
            active[:d][negative] = False
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:d], float(theta[d])


def logloss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
