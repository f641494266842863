"""The seam of the Python API: what an opened index (`rag.open_index`) and a `rag.Client` both answer, with the
same arguments and records, so an application or a retriever (rag.integrations) takes either."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Protocol, runtime_checkable

from rag.api.answers import PatternAnswer, RelatedAnswer, SimilarAnswer
from rag.errors import QueryError, shorten
from rag.records.filters import Filters
from rag.records.results import Results
from rag.search.browse import PatternPage
from rag.search.context import ContextPack
from rag.search.filters import Facets

FILTER_FIELDS = tuple(f.name for f in fields(Filters))
FiltersLike = Filters | Mapping[str, Any] | None  # a mapping names some of FILTER_FIELDS


@runtime_checkable
class Library(Protocol):
    """A pattern library to ask: in process (`rag.Index`) or over HTTP (`rag.Client`). Every method raises the
    typed errors of `rag.errors`: `QueryError` and `UnknownFilterValue` (an `InputError`: the caller's mistake,
    `field` names it), `PatternNotFound` (with `suggestions`), `IndexError_` (the index cannot be served)."""

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        offset: int = 0,
        filters: FiltersLike = None,
        group_duplicates: bool = False,
        reader: str | None = None,
        explain: bool = False,
    ) -> Results:
        """The patterns that fit `query` (a situation in plain words, or a pattern's name), ranked offset+1 to
        offset+k, each with its calibrated `relevance` and the sections that matched (`evidence`, cited
        `slug#section`). `reader` ranks and labels for a context without filtering by it; `explain` adds each
        retriever's rank and score, the fusion settings and timings."""
        ...

    def pattern(self, slug: str, context: str | None = None) -> PatternAnswer:
        """The whole pattern, optionally seen from `context` (its label there)."""
        ...

    def related(self, slug: str) -> RelatedAnswer:
        """The pattern's curated relationships in both directions, heaviest first."""
        ...

    def similar(self, slug: str, k: int = 10, *, filters: FiltersLike = None) -> SimilarAnswer:
        """The `k` patterns nearest to this one by content, best first."""
        ...

    def facets(self) -> Facets:
        """The valid filter values (domains, contexts, statuses, confidences) with their pattern counts."""
        ...

    def list_patterns(self, filters: FiltersLike = None, limit: int = 20, offset: int = 0) -> PatternPage:
        """A page of the patterns passing `filters`, in title order, with the total count."""
        ...

    def context_pack(self, query: str, budget_tokens: int = 2000, *, filters: FiltersLike = None, patterns: int = 5) -> ContextPack:
        """The best sections of the best `patterns` patterns for `query` within `budget_tokens` (model word pieces),
        Solution and Problem first, each passage cited `slug#section`."""
        ...


def as_filters(value: FiltersLike) -> Filters:
    """`value` as the `Filters` record: a record as it is, a mapping by its keys (only FILTER_FIELDS), None as no filter.
    The values are checked against the index where the filters are used (`UnknownFilterValue` lists the valid ones)."""
    if value is None:
        return Filters()
    if isinstance(value, Filters):
        return value
    if isinstance(value, Mapping):
        unknown = [key for key in value if key not in FILTER_FIELDS]
        if unknown:
            raise QueryError("filters", f"unknown filter {shorten(unknown[0])}; the filters are {', '.join(FILTER_FIELDS)}")
        return Filters(**value)
    raise QueryError("filters", f"filters must be a rag.Filters or a mapping of {', '.join(FILTER_FIELDS)}, got {shorten(value)}")
