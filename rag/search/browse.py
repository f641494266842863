"""Browsing: a page of the patterns that pass the filters, in title order, with the total count.

The filters are the search filters (the same masks), so a page and a search agree on what matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.records.filters import Filters
from rag.records.pattern import Pattern


@dataclass(frozen=True, slots=True)
class PatternBrief:
    """One line of a listing: enough to choose a pattern, then fetch it by slug."""

    slug: str
    title: str
    summary: str
    domains: tuple[str, ...]
    status: str | None
    confidence: float | None
    context_label: str | None = None  # the pattern's name in the filtered context


@dataclass(frozen=True, slots=True)
class PatternPage:
    filters: dict
    total: int  # patterns passing the filters, over all pages
    offset: int
    limit: int
    patterns: tuple[PatternBrief, ...]

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None on the last page."""
        end = self.offset + len(self.patterns)
        return end if end < self.total else None


def browse(patterns: Sequence[Pattern], mask: np.ndarray | None, filters: Filters, limit: int, offset: int) -> PatternPage:
    """Patterns passing `mask` (None: all), sorted by title then slug, `limit` of them from `offset`."""
    rows = range(len(patterns)) if mask is None else np.flatnonzero(mask).tolist()
    chosen = sorted((patterns[r] for r in rows), key=lambda p: (p.title.casefold(), p.slug))
    page = tuple(
        PatternBrief(
            p.slug,
            p.title,
            p.brief,
            p.domains,
            p.lifecycle.status,
            p.lifecycle.confidence,
            p.context_label(filters.context) if filters.context else None,
        )
        for p in chosen[offset : offset + limit]
    )
    return PatternPage(filters.to_dict(), len(chosen), offset, limit, page)
