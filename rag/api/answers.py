"""The answers of the Python API that no record below holds whole: a pattern as seen from a context, its curated
relationships, and the patterns most like it, each with the index version that answered (as the HTTP answers).

Searches, listings, facets and context packs answer with the records of the stages (`Results`, `PatternPage`,
`Facets`, `ContextPack`), the same in process and over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.records.pattern import Pattern
from rag.search.graph import RelatedPattern, SimilarPattern


@dataclass(frozen=True, slots=True)
class PatternAnswer:
    """One whole pattern (every section's text), optionally seen from a context."""

    pattern: Pattern
    context: str | None  # the context asked for, normalized (lower case); None when none was asked
    context_label: str | None  # the pattern's name in that context (None when it has none)
    index_version: str


@dataclass(frozen=True, slots=True)
class RelatedAnswer:
    """A pattern's curated relationships in both directions, heaviest first."""

    slug: str
    title: str
    related: tuple[RelatedPattern, ...]
    dangling_targets: tuple[str, ...]  # curated targets naming no pattern of the library, as written
    index_version: str


@dataclass(frozen=True, slots=True)
class SimilarAnswer:
    """The patterns nearest to one pattern by content (more like this), best first."""

    slug: str
    title: str
    similar: tuple[SimilarPattern, ...]
    index_version: str
