"""Filters as Milvus boolean expressions: the pre-filter of every search, so k hits come back whenever k match.

Both collections carry the filter fields of each row's pattern: `domains` (lower-cased, as the masks compare
them), `contexts`, `status` and `confidence` (NO_CONFIDENCE when the pattern has none, so `confidence >= x`
excludes it, as a NaN does in the masks). A `Selection` whose filters are inactive but whose masks restrict
(more-like-this excludes the pattern itself) becomes a `pattern_row` list, the shorter of `in` and `not in`.
String literals are JSON-quoted: Milvus reads `"..."` with backslash escapes.
"""

from __future__ import annotations

import json

import numpy as np

from rag.index.engine import Selection
from rag.records.filters import Filters

NO_CONFIDENCE = -1.0  # stored for a pattern without a confidence; every min_confidence filter is >= 0


def literal(value: str) -> str:
    return json.dumps(str(value), ensure_ascii=False)


def filters_expression(filters: Filters) -> str:
    """The expression of normalized filters; "" when none is active."""
    parts = []
    if filters.domain:
        parts.append(f"array_contains(domains, {literal(filters.domain)})")
    if filters.context:
        parts.append(f"array_contains(contexts, {literal(filters.context)})")
    if filters.status:
        parts.append(f"status == {literal(filters.status)}")
    if filters.min_confidence is not None:
        parts.append(f"confidence >= {float(filters.min_confidence)!r}")
    return " and ".join(parts)


def rows_expression(field: str, keep: np.ndarray) -> str:
    """`field in [...]` or `field not in [...]` for the True positions of `keep`, whichever list is shorter."""
    keep = np.asarray(keep, dtype=bool)
    inside = np.flatnonzero(keep)
    if len(inside) == len(keep):
        return ""
    if len(inside) <= len(keep) - len(inside):
        return f"{field} in [{', '.join(map(str, inside.tolist()))}]"
    outside = np.flatnonzero(~keep)
    return f"{field} not in [{', '.join(map(str, outside.tolist()))}]"


def selection_expression(selection: Selection) -> str:
    """The pre-filter of a search: the filters when any is active (the retriever's masks are exactly them),
    else the pattern mask as a row list (callers such as more-like-this pass masks without filters)."""
    if selection.filters.active:
        return filters_expression(selection.filters)
    if selection.patterns is not None:
        return rows_expression("pattern_row", selection.patterns)
    return ""


def both(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)
