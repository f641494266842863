"""The prepared query: one search, validated once, with what every stage shares computed at most once.

`Retriever.prepare` turns a face's `SearchRequest` into a `PreparedQuery`: the text stripped, k and offset in
range, the filters and the reader normalized against the index's facets, the analyzed tokens, and the `Selection`
(filters as given and as masks) built once. The signals, the learned fusion, the calibration and the evidence
then read the same arrays: BM25 of every pattern per field and query coverage are computed on first use and kept
for the rest of the search (`bm25`, `coverage`), never twice. A prepared query belongs to one search in one
thread; the vector (and, in a batch, the dense hits) are added by `with_vector` / `with_dense`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from rag.index.engine import Engine, PatternField, Scored, Selection
from rag.records.filters import Filters

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
SENTENCE_MIN_WORDS = 3  # a shorter fragment ("Help!") carries no situation of its own
MAX_SENTENCES = 4  # encoded per narrative query (each one costs a short forward pass)


@dataclass(frozen=True)
class PreparedQuery:
    text: str
    k: int  # hits to rank: the request's offset + k
    offset: int
    filters: Filters  # normalized (known values, canonical case)
    reader: str | None  # the context to rank and label for: the request's reader, else the context filter
    group_duplicates: bool
    tokens: tuple[str, ...]  # the analyzer's (stop words out, stemmed)
    selection: Selection
    engine: Engine = field(repr=False, compare=False)
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)
    dense: Scored | None = field(default=None, repr=False, compare=False)  # chunk hits searched in a batch
    sentence_vectors: np.ndarray | None = field(default=None, repr=False, compare=False)  # (sentences, d) of a narrative query
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def page(self) -> int:
        """Hits returned (k after the offset)."""
        return self.k - self.offset

    def with_vector(self, vector: np.ndarray) -> PreparedQuery:
        return replace(self, vector=vector, _memo=self._memo)

    def with_dense(self, dense: Scored) -> PreparedQuery:
        return replace(self, dense=dense, _memo=self._memo)

    def with_sentences(self, vectors: np.ndarray) -> PreparedQuery:
        return replace(self, sentence_vectors=vectors, _memo=self._memo)

    @property
    def sentences(self) -> tuple[str, ...]:
        """The query's sentences when it tells a situation in several (each of SENTENCE_MIN_WORDS words or more), else ()."""
        parts = [p.strip() for p in _SENTENCE_END.split(self.text) if len(p.split()) >= SENTENCE_MIN_WORDS]
        return tuple(parts[:MAX_SENTENCES]) if len(parts) >= 2 else ()

    def bm25(self, field_name: PatternField) -> np.ndarray:
        """BM25 of every pattern row for this query (0 outside the selection), computed once."""
        key = ("bm25", field_name)
        if key not in self._memo:
            self._memo[key] = self.engine.lexical_scores(field_name, self.tokens, self.selection)
        return self._memo[key]

    def coverage(self) -> np.ndarray:
        """Per pattern row: the idf-weighted share of the query's tokens its text holds, computed once."""
        if "coverage" not in self._memo:
            self._memo["coverage"] = self.engine.coverage(self.tokens)
        return self._memo["coverage"]
