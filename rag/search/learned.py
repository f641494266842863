"""Learned fusion: a linear model over structure-aware features of every candidate pattern (issue 12).

Candidates are the union of the signals' runs (each cut at `depth` under the filter). For each candidate
the features are computed exactly, not only where a signal happened to retrieve it:

- dense, per section role: the query's cosine with every chunk of the pattern, reduced to its best
  chunk, its best chunk + support (the default dense score), and the best chunk of each role group
  (problem and context; solution and implementation; summary and tension; context labels; known uses,
  vitality and cognitive era; consequences and the rest), plus the asked-for reader's own label;
- lexical: full-text and keyword BM25 scaled by the query's best candidate, and the idf-weighted share
  of the query's words the pattern's text contains;
- names: the title or alias similarity of the names signal;
- the default convex fusion's score itself, so the model learns corrections to it;
- a hub prior: how well the pattern matches everything (its mean best-chunk cosine to pseudo-queries
  drawn from the library's own problem sections), so that patterns that score well for every query can
  be corrected.

The score is `features @ weights` (rag/search/ranker.json, fitted with k-fold cross-validation by
`python -m lab.learn`; eval/learned.md). Pure numpy over the index's arrays; no state per query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index.priors import CORE_ROLES, core_norms, hub_prior
from rag.search.query import PreparedQuery

__all__ = ["FEATURES", "ROLE_GROUPS", "LinearRanker", "FeatureExtractor", "core_norms", "hub_prior"]

ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "d_problem": ("problem", "context"),
    "d_solution": ("solution", "implementation"),
    "d_summary": ("summary", "tension"),
    "d_label": ("context-label",),
    "d_uses": ("known-uses", "vitality", "cognitive-era"),
    "d_other": ("consequences", "other"),
}
LEXICAL_GROUPS = ("problem", "solution", "summary")  # section groups of ROLE_GROUPS with a passage-BM25 feature
LENGTH_INTERACTIONS = ("d_best", "d_problem", "fulltext", "keywords", "coverage", "names")  # features x the query's length
LONG_FROM, LONG_TO = 4, 16  # query tokens (stop words out): length 0 at or below LONG_FROM, 1 at or above LONG_TO
FEATURES: tuple[str, ...] = (
    "fused",
    "d_best",
    "d_support",
    *ROLE_GROUPS,
    "d_reader",
    "fulltext",
    "keywords",
    "coverage",
    "names",
    "hub",
    # round 3 (issue 27): features that mean the same in a 60- and a 3,600-pattern library, and evidence for narratives
    "d_rel",  # d_support minus the query's best candidate's: 0 for the best, negative below it
    "d_pattern",  # cosine with the centroid of the pattern's core chunks (summary, problem, context, solution)
    "d_prf",  # best chunk's cosine with the query moved towards its first-pass top chunks (Rocchio)
    "d_sent_max",  # a query of several sentences: the best of its sentences' best-chunk cosines (else d_best)
    "d_sent_mean",  # ... and their mean: a pattern that answers every sentence
    "r_dense",  # rank features, scale-free: 60 / (60 + rank) in each signal's run, 0 when absent
    "r_fulltext",
    "r_keywords",
    "r_names",
    # lexical counterparts (issue 27, item 3): pseudo-relevance feedback, key terms of a long query, BM25 per section
    "l_rm3",  # full-text BM25 interpolated with BM25 of the terms typical of its first-pass top patterns (RM3-like)
    "l_key",  # full-text BM25 of the query's KEY_TERMS rarest words only (query-term weighting for narratives)
    *(f"l_{group}" for group in LEXICAL_GROUPS),  # the best passage BM25 among a pattern's chunks of a section group
    # query-dependent fusion: a signal times how long the query is, so a narrative can weigh the signals otherwise
    *(f"x_{name}" for name in LENGTH_INTERACTIONS),
)
SENTENCE_FEATURES = frozenset({"d_sent_max", "d_sent_mean"})
PRF_CHUNKS = 10  # first-pass dense chunks the Rocchio query moves towards
PRF_WEIGHT = 0.5  # q' = normalize(q + PRF_WEIGHT x mean of those chunks)
RANK_K = 60.0  # as reciprocal rank fusion's k
RM3_DOCS = 10  # first-pass full-text patterns the feedback terms come from
RM3_TERMS = 20  # feedback terms added
RM3_WEIGHT = 0.5  # l_rm3 = (1 - w) x full-text BM25 + w x BM25 of the feedback terms (each scaled by the best candidate)
KEY_TERMS = 6  # l_key: a query's rarest distinct words kept (all of a shorter query's)
MODEL_PATH = Path(__file__).with_name("ranker.json")


@dataclass(frozen=True)
class LinearRanker:
    weights: dict[str, float]
    source: str = ""  # how the weights were chosen (the fit's report)

    @property
    def active(self) -> frozenset[str]:
        """The features this model weighs (the others need not be computed)."""
        return frozenset(name for name, weight in self.weights.items() if weight != 0.0)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES], dtype=np.float32)
        return matrix @ w

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> LinearRanker:
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data["weights"]) - set(FEATURES)
        if unknown:
            raise ValueError(f"{path}: unknown ranker features {sorted(unknown)}; known: {list(FEATURES)}")
        return cls({k: float(v) for k, v in data["weights"].items()}, data.get("source", ""))

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps({"features": list(FEATURES), "weights": self.weights, "source": self.source}, indent=2) + "\n", encoding="utf-8"
        )


class FeatureExtractor:
    """Features of candidate pattern rows for one query (see the module docstring)."""

    def __init__(
        self,
        index,
        hub: np.ndarray,
        dense_support: float,
        dense_support_chunks: int,
        core_norms: np.ndarray | None = None,
        active: frozenset[str] | None = None,
    ):
        self.index = index
        self.hub = hub
        self.core_norms = core_norms  # per pattern: |sum of its core chunk vectors| (rag/index/priors.py); None: no d_pattern
        self.active = frozenset(FEATURES) if active is None else active  # features to compute (the others stay 0)
        self.support = dense_support
        self.support_chunks = dense_support_chunks
        groups = {role: g for g, roles in ROLE_GROUPS.items() for role in roles}
        names = list(ROLE_GROUPS)
        self.chunk_group = np.array([names.index(groups.get(role, "d_other")) for role in index.chunks.roles], dtype=np.int64)
        self.label_context = np.array([c or "" for c in index.chunks.contexts], dtype=object)
        self.core = np.isin(np.asarray(index.chunks.roles, dtype=object), CORE_ROLES)

    @property
    def needs_sentences(self) -> bool:
        """Whether a query of several sentences should have each sentence encoded (the sentence features are used)."""
        return bool(SENTENCE_FEATURES & self.active)

    def candidates(self, runs: Mapping, depth: int) -> np.ndarray:
        rows: set[int] = set()
        for run in runs.values():
            rows.update(run.rows[:depth].tolist())
        return np.array(sorted(rows), dtype=np.int64)

    def features(self, rows: np.ndarray, query: PreparedQuery, runs: Mapping, fused: Mapping[int, float] | None = None) -> np.ndarray:
        n = len(rows)
        X = np.zeros((n, len(FEATURES)), dtype=np.float32)
        col = {name: i for i, name in enumerate(FEATURES)}
        if n == 0:
            return X
        if fused:
            X[:, col["fused"]] = [fused.get(int(r), 0.0) for r in rows]
        if query.vector is not None:
            self._dense(X, col, rows, query, runs)
        if query.tokens:
            for name in ("fulltext", "keywords"):
                raw = query.bm25(name)[rows]
                top = raw.max()
                X[:, col[name]] = raw / top if top > 0 else 0.0
            X[:, col["coverage"]] = query.coverage()[rows]
            self._lexical(X, col, rows, query, runs)
        names = runs.get("names")
        if names is not None:
            values = dict(zip(names.rows.tolist(), names.scores.tolist()))
            X[:, col["names"]] = [values.get(int(r), 0.0) for r in rows]
        X[:, col["hub"]] = self.hub[rows]
        for name, signal in (("r_dense", "dense"), ("r_fulltext", "fulltext"), ("r_keywords", "keywords"), ("r_names", "names")):
            run = runs.get(signal)
            if run is not None and name in self.active and len(run.rows):
                position = {int(r): i for i, r in enumerate(run.rows.tolist())}
                X[:, col[name]] = [RANK_K / (RANK_K + 1 + position[int(r)]) if int(r) in position else 0.0 for r in rows]
        length = query_length(len(query.tokens))
        for name in LENGTH_INTERACTIONS:
            if f"x_{name}" in self.active:
                X[:, col[f"x_{name}"]] = length * X[:, col[name]]
        return X

    def _spans(self, rows: np.ndarray, query: PreparedQuery) -> tuple[list[np.ndarray], np.ndarray]:
        """Each candidate's chunk rows the query may see (filters; masks of what is not encoded), and all of them."""
        spans = [self.index.chunk_rows(int(r)) for r in rows]
        allowed = query.selection.chunks
        if allowed is not None:
            spans = [span[allowed[span]] for span in spans]
        return spans, (np.concatenate(spans) if spans else np.zeros(0, np.int64))

    def _lexical(self, X: np.ndarray, col: dict[str, int], rows: np.ndarray, query: PreparedQuery, runs: Mapping) -> None:
        engine = self.index.engine
        fulltext = X[:, col["fulltext"]]
        if "l_rm3" in self.active:
            first = runs.get("fulltext")
            terms = engine.feedback_terms(first.rows[:RM3_DOCS], RM3_TERMS, set(query.tokens)) if first is not None else []
            feedback = _scaled(engine.lexical_scores("fulltext", terms, query.selection)[rows]) if terms else fulltext
            X[:, col["l_rm3"]] = (1.0 - RM3_WEIGHT) * fulltext + RM3_WEIGHT * feedback
        if "l_key" in self.active:
            distinct = list(dict.fromkeys(query.tokens))
            if len(distinct) > KEY_TERMS:
                df = engine.document_frequencies(distinct)
                kept = [distinct[i] for i in np.argsort(np.where(df > 0, df, np.iinfo(np.int64).max), kind="stable")[:KEY_TERMS]]
                X[:, col["l_key"]] = _scaled(engine.lexical_scores("fulltext", kept, query.selection)[rows])
            else:
                X[:, col["l_key"]] = fulltext
        groups = [g for g in LEXICAL_GROUPS if f"l_{g}" in self.active]
        if groups:
            spans, flat = self._spans(rows, query)
            if len(flat):
                scores = engine.passage_scores(query.tokens, flat)
                owner = np.repeat(np.arange(len(rows)), [len(span) for span in spans])
                names = list(ROLE_GROUPS)
                chunk_groups = self.chunk_group[flat]
                for g in groups:
                    member = chunk_groups == names.index(f"d_{g}")
                    best = np.zeros(len(rows))
                    np.maximum.at(best, owner[member], scores[member])
                    X[:, col[f"l_{g}"]] = _scaled(best)

    def _dense(self, X: np.ndarray, col: dict[str, int], rows: np.ndarray, query: PreparedQuery, runs: Mapping) -> None:
        spans, flat = self._spans(rows, query)
        if len(flat) == 0:
            return
        assert query.vector is not None
        vectors: list[np.ndarray] = [query.vector]
        prf = self._rocchio(query.vector, runs) if "d_prf" in self.active else None
        if prf is not None:
            vectors.append(prf)
        sentences = query.sentence_vectors if SENTENCE_FEATURES & self.active else None
        if sentences is not None:
            vectors.extend(sentences)
        all_sims = self.index.engine.chunk_similarities(np.stack(vectors), flat)  # one engine call for every vector
        sims = all_sims[0]
        n = len(rows)
        owner = np.repeat(np.arange(n), [len(span) for span in spans])
        counts = np.bincount(owner, minlength=n)
        has = counts > 0
        mean = np.bincount(owner, weights=sims, minlength=n) / np.maximum(counts, 1)
        # chunks best-first within each candidate: rank 0 is the best chunk, 1.. the support
        order = np.lexsort((-sims, owner))
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(len(order)) - first[owner[order]]
        best = np.zeros(n, dtype=np.float64)
        best[owner[order][rank == 0]] = sims[order][rank == 0]
        near = (rank >= 1) & (rank <= self.support_chunks)
        support = np.bincount(owner[order][near], weights=sims[order][near], minlength=n)
        X[has, col["d_best"]] = best[has]
        X[has, col["d_support"]] = (best + self.support * support)[has]
        groups = self.chunk_group[flat]
        first_group = col[next(iter(ROLE_GROUPS))]
        for j in range(len(ROLE_GROUPS)):
            X[has, first_group + j] = self._group_max(owner, sims, groups == j, mean, n)[has]
        if query.reader:
            X[has, col["d_reader"]] = self._group_max(owner, sims, self.label_context[flat] == query.reader, mean, n)[has]
        if "d_rel" in self.active and has.any():
            X[has, col["d_rel"]] = X[has, col["d_support"]] - X[has, col["d_support"]].max()
        if "d_pattern" in self.active and self.core_norms is not None:
            core = self.core[flat]
            total = np.bincount(owner[core], weights=sims[core], minlength=n)
            norms = self.core_norms[rows]
            X[:, col["d_pattern"]] = np.where(norms > 0, total / np.maximum(norms, 1e-9), X[:, col["d_best"]])
        if prf is not None:
            X[:, col["d_prf"]] = self._best(owner, all_sims[1], n)
        if sentences is not None and len(sentences) > 1:
            per = np.stack([self._best(owner, all_sims[len(vectors) - len(sentences) + i], n) for i in range(len(sentences))])
            X[:, col["d_sent_max"]] = per.max(axis=0)
            X[:, col["d_sent_mean"]] = per.mean(axis=0)
        else:
            X[:, col["d_sent_max"]] = X[:, col["d_best"]]
            X[:, col["d_sent_mean"]] = X[:, col["d_best"]]

    def _rocchio(self, vector: np.ndarray, runs: Mapping) -> np.ndarray | None:
        """The query vector moved towards the vectors of its first-pass top dense chunks (pseudo-relevance feedback)."""
        dense = runs.get("dense")
        if dense is None or dense.chunks is None or not len(dense.chunks.rows):
            return None
        top = self.index.engine.chunk_vectors(dense.chunks.rows[:PRF_CHUNKS])
        moved = vector.astype(np.float32) + PRF_WEIGHT * top.mean(axis=0)
        norm = float(np.linalg.norm(moved))
        return (moved / norm).astype(np.float32) if norm > 0 else None

    @staticmethod
    def _best(owner: np.ndarray, sims: np.ndarray, n: int) -> np.ndarray:
        out = np.full(n, -np.inf)
        np.maximum.at(out, owner, sims)
        return np.where(np.isfinite(out), out, 0.0)

    @staticmethod
    def _group_max(owner: np.ndarray, sims: np.ndarray, member: np.ndarray, fallback: np.ndarray, n: int) -> np.ndarray:
        """Per candidate: its best chunk among `member`, or `fallback` (its mean) when it has none."""
        out = np.full(n, -np.inf)
        np.maximum.at(out, owner[member], sims[member])
        return np.where(np.isfinite(out), out, fallback)


def query_length(tokens: int) -> float:
    """0 for a short query (at most LONG_FROM tokens), 1 for a narrative (at least LONG_TO), linear between."""
    return float(min(1.0, max(0.0, (tokens - LONG_FROM) / (LONG_TO - LONG_FROM))))


def _scaled(values: np.ndarray) -> np.ndarray:
    """Values divided by their maximum (all 0 when none is positive): a per-query scale, as the BM25 features have."""
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)
