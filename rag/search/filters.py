"""Filters as boolean masks over patterns (and, through chunk -> pattern rows, over chunks).

Masks are applied inside each retriever before its top-k cut, so k hits come back whenever k match.
Unknown values are rejected with the valid ones, taken from the index itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.errors import UnknownFilterValue
from rag.records.filters import Filters
from rag.records.pattern import Pattern

__all__ = ["CONFIDENCE_SCALE", "Facets", "FilterMasks", "Filters", "normalize"]

CONFIDENCE_SCALE = "confidence from 0 to 1: five stars = 1.0, one star = 0.2; older 0-1 fractions as written"


@dataclass(frozen=True, slots=True)
class Facets:
    """Valid filter values with pattern counts."""

    domains: tuple[tuple[str, int], ...]
    contexts: tuple[tuple[str, int], ...]
    statuses: tuple[tuple[str, int], ...]
    confidences: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, patterns: Sequence[Pattern]) -> Facets:
        def counted(values) -> tuple[tuple[str, int], ...]:
            return tuple(sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))

        return cls(
            domains=counted(d.lower() for p in patterns for d in p.domains),
            contexts=counted(c for p in patterns for c in p.contexts),
            statuses=counted(p.lifecycle.status for p in patterns if p.lifecycle.status),
            confidences=counted(f"{p.lifecycle.confidence:.2f}" for p in patterns if p.lifecycle.confidence is not None),
        )

    def to_dict(self) -> dict:
        return {
            name: [{"value": v, "count": n} for v, n in getattr(self, name)] for name in ("domains", "contexts", "statuses", "confidences")
        }


def normalize(filters: Filters, facets: Facets) -> Filters:
    """Lower-case and validate every value; raise UnknownFilterValue naming the field and the valid values."""

    def check(field: str, value: str | None, known: tuple[tuple[str, int], ...]) -> str | None:
        if value is None or not str(value).strip():
            return None
        value = str(value).strip().lower()
        valid = sorted(v for v, _ in known)
        if value not in set(valid):
            raise UnknownFilterValue(field, value, valid)
        return value

    confidence = filters.min_confidence
    if confidence is not None and not (0 <= confidence <= 1):
        raise UnknownFilterValue("min_confidence", confidence, [CONFIDENCE_SCALE])
    return Filters(
        domain=check("domain", filters.domain, facets.domains),
        context=check("context", filters.context, facets.contexts),
        status=check("status", filters.status, facets.statuses),
        min_confidence=confidence,
    )


class FilterMasks:
    """Per-value boolean masks over patterns, computed once per index, combined per query."""

    def __init__(self, patterns: Sequence[Pattern]):
        n = len(patterns)
        self.size = n
        self.domains: dict[str, np.ndarray] = {}
        self.contexts: dict[str, np.ndarray] = {}
        self.statuses: dict[str, np.ndarray] = {}
        self.confidence = np.full(n, np.nan, dtype=np.float32)
        for i, p in enumerate(patterns):
            for d in {d.lower() for d in p.domains}:
                self.domains.setdefault(d, np.zeros(n, dtype=bool))[i] = True
            for c in p.contexts:
                self.contexts.setdefault(c, np.zeros(n, dtype=bool))[i] = True
            if p.lifecycle.status:
                self.statuses.setdefault(p.lifecycle.status, np.zeros(n, dtype=bool))[i] = True
            if p.lifecycle.confidence is not None:
                self.confidence[i] = p.lifecycle.confidence

    def mask(self, filters: Filters) -> np.ndarray | None:
        """True for patterns passing every (normalized) filter; None when no filter is active."""
        if not filters.active:
            return None
        keep = np.ones(self.size, dtype=bool)
        empty = np.zeros(self.size, dtype=bool)
        if filters.domain:
            keep &= self.domains.get(filters.domain, empty)
        if filters.context:
            keep &= self.contexts.get(filters.context, empty)
        if filters.status:
            keep &= self.statuses.get(filters.status, empty)
        if filters.min_confidence is not None:
            with np.errstate(invalid="ignore"):
                keep &= self.confidence >= filters.min_confidence
        return keep
