"""Near-duplicate patterns, grouped under the best-ranked one when a search asks for it."""

from __future__ import annotations

import functools

from rag.records.pattern import Pattern, name_key
from rag.search.names import trigrams


@functools.lru_cache(maxsize=65536)
def _title_trigrams(title: str) -> frozenset[str]:
    """Cached: `rag adapt` compares every pair of a library's patterns (13M comparisons on commons-os)."""
    return frozenset(trigrams(name_key(title)))


def near_duplicates(a: Pattern, b: Pattern, title_dice: float) -> bool:
    """One slug extends the other (kanban / kanban-production), or the titles' trigram Dice reaches `title_dice`."""
    sa, sb = a.slug, b.slug
    if sb.startswith(sa + "-") or sa.startswith(sb + "-"):
        return True
    ta, tb = _title_trigrams(a.title), _title_trigrams(b.title)
    return 2 * len(ta & tb) / max(1, len(ta) + len(tb)) >= title_dice


def group(order: list[int], patterns: tuple[Pattern, ...], k: int, title_dice: float) -> list[tuple[int, list[int]]]:
    """The first k leaders of `order` (pattern rows best-first), each with the later rows it absorbs."""
    leaders: list[int] = []
    grouped: dict[int, list[int]] = {}
    for row in order:
        leader = next((lead for lead in leaders if near_duplicates(patterns[lead], patterns[row], title_dice)), None)
        if leader is not None:
            grouped[leader].append(row)
            continue
        if len(leaders) < k:
            leaders.append(row)
            grouped[row] = []
    return [(lead, grouped[lead]) for lead in leaders]
