"""Relationship targets resolved to slugs: by slug, by `pat_...` id, then by a title or an alias.

Real libraries often name a related pattern by its name instead of its slug (on bmn 276 of 278 targets
are not slugs, and 100 of them name exactly one pattern by its title or an alias). A target is compared
with titles and aliases as a name key (lowercase, every run of other characters a single space), so
`subscription-model`, `Subscription Model` and `subscription_model` are the same name. A title match wins
over an alias match; a name shared by several patterns is ambiguous and stays unresolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from rag.records.pattern import Pattern, Relationship, name_key

ResolvedBy = Literal["title", "alias"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a target points: `slug` (None when dangling), how it was found, and the candidates of an ambiguous name."""

    slug: str | None
    resolved_by: ResolvedBy | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetResolver:
    slugs: frozenset[str]
    ids: dict[str, str] = field(default_factory=dict)
    titles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, patterns: Iterable[Pattern]) -> TargetResolver:
        patterns = list(patterns)
        titles: dict[str, list[str]] = {}
        aliases: dict[str, list[str]] = {}
        for p in patterns:
            titles.setdefault(name_key(p.title), []).append(p.slug)
            for alias in dict.fromkeys(name_key(a) for a in p.aliases):
                aliases.setdefault(alias, []).append(p.slug)
        return cls(
            frozenset(p.slug for p in patterns),
            {p.id: p.slug for p in patterns if p.id},
            {k: tuple(v) for k, v in titles.items() if k},
            {k: tuple(v) for k, v in aliases.items() if k},
        )

    def resolve(self, target: str, source: str) -> Resolution:
        """The pattern `target` names, seen from the pattern `source` (which never resolves to itself)."""
        if target in self.slugs:
            return Resolution(target)
        if target in self.ids:
            return Resolution(self.ids[target])
        key = name_key(target)
        ambiguous: tuple[str, ...] = ()
        for how, table in (("title", self.titles), ("alias", self.aliases)):
            found = tuple(s for s in table.get(key, ()) if s != source)
            if len(found) == 1:
                return Resolution(found[0], how)
            if len(found) > 1 and not ambiguous:
                ambiguous = found
        return Resolution(None, None, ambiguous)


def resolve_edge(edge: Relationship, resolution: Resolution) -> Relationship:
    """The edge pointing at the resolved slug, marked with how a name became that slug."""
    if resolution.slug is None or resolution.slug == edge.target:
        return edge
    if resolution.resolved_by is None:  # a `pat_...` id: the older schema's own way of naming a target
        return replace(edge, target=resolution.slug)
    return replace(edge, target=resolution.slug, resolved_by=resolution.resolved_by, written=edge.target)


def dangling_reason(edge: Relationship, resolution: Resolution) -> str:
    if resolution.candidates:
        names = ", ".join(sorted(resolution.candidates))
        return f"dangling relationship: {edge.target!r} is not a slug and names several patterns ({names}); use one's slug"
    return f"dangling relationship: {edge.target!r} is not in the library"
