"""Immutable records that cross stage boundaries: Pattern, Section, Relationship, Problem.

Every record is a frozen dataclass holding tuples (never lists or dicts) so a loaded library can be
shared between threads and cached without defensive copies. Ids are strings (slugs, chunk ids).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BRIEF_CHARS = 320  # the longest derived summary: two lines of a result card, like an evidence snippet
_MARKUP = re.compile(r"[*_`>#]+|!?\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

Severity = Literal["error", "warning"]

CANONICAL_SECTIONS: tuple[str, ...] = (
    "Context",
    "Problem",
    "Solution",
    "Implementation",
    "Consequences",
    "Known Uses",
    "Cognitive Era",
    "Vitality",
)
KNOWN_CONTEXTS: tuple[str, ...] = ("corporate", "government", "activist", "tech", "academic", "community")
RELATIONSHIP_KINDS: tuple[str, ...] = (
    "generalizes_from",
    "specializes_to",
    "enables",
    "requires",
    "alternatives",
    "complementary",
    "tools",
    "related",
)


_NON_WORD = re.compile(r"[^0-9a-z]+")


def name_key(text: str) -> str:
    """The one comparison key of a name (title, alias, relationship target, query as a name): accents folded to
    ASCII, lower case, "&" read as "and", every run of other characters one space."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    return _NON_WORD.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one file: where, why, and how bad."""

    path: str
    location: str  # "line 12", "field ontology.domain", "file"
    reason: str
    severity: Severity

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Section:
    """One body section: its heading as written, its role, and its text (heading excluded)."""

    title: str
    role: str
    level: int
    text: str
    line: int


@dataclass(frozen=True, slots=True)
class Relationship:
    """A typed, weighted edge of the curated graph. `target` is a slug (or an unresolved id)."""

    kind: str
    target: str
    weight: float | None = None
    description: str = ""
    resolved_by: str | None = None  # "title" or "alias": the file named the target by a name, not a slug
    written: str | None = None  # the target as the file wrote it, when resolved by a name


@dataclass(frozen=True, slots=True)
class Entity:
    id: str
    type: str = ""
    label: str = ""
    relevance: float | None = None


@dataclass(frozen=True, slots=True)
class Community:
    id: str
    label: str = ""
    source: str = ""
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    status: str | None = None
    # One scale for both generations: 0-1, where 1.0 is five stars. The newest files rate 1-5 stars
    # (lifecycle.confidence: stars / 5), older ones a 0-1 fraction (confidence_score, kept as is).
    confidence: float | None = None
    version: str | None = None
    usage_stage: str | None = None
    adoption_stage: str | None = None
    confidence_stars: float | None = None  # the 1-5 star rating as written, when the file gave stars


@dataclass(frozen=True, slots=True)
class Provenance:
    contributors: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    license: str | None = None
    attribution: str | None = None
    collection: str | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    """One pattern, normalized across schema generations."""

    slug: str
    title: str
    path: str
    schema: Literal["ontology", "classification"]
    id: str | None = None
    aliases: tuple[str, ...] = ()
    summary: str = ""
    epigraph: str = ""
    context_labels: tuple[tuple[str, str], ...] = ()
    domain: str | None = None
    cross_domains: tuple[str, ...] = ()
    legacy_domain: str | None = None
    commons_domains: tuple[str, ...] = ()
    tension: str = ""
    keywords: tuple[str, ...] = ()
    scores: tuple[tuple[str, float], ...] = ()
    overall_score: float | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    relationships: tuple[Relationship, ...] = ()
    entities: tuple[Entity, ...] = ()
    communities: tuple[Community, ...] = ()
    provenance: Provenance = field(default_factory=Provenance)
    # a tuple, or in an opened index a Sequence read from disk on demand (rag.index.rows.SectionsOnDisk)
    sections: Sequence[Section] = ()
    content_hash: str = ""

    @property
    def domains(self) -> tuple[str, ...]:
        """Every domain the pattern belongs to (primary, cross, legacy), de-duplicated, in order."""
        seen: dict[str, None] = {}
        for value in (self.domain, *self.cross_domains, self.legacy_domain, *self.commons_domains):
            if value:
                seen.setdefault(value, None)
        return tuple(seen)

    @property
    def contexts(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.context_labels)

    def context_label(self, context: str) -> str | None:
        return dict(self.context_labels).get(context)

    def section(self, role: str) -> Section | None:
        return next((s for s in self.sections if s.role == role), None)

    @property
    def brief(self) -> str:
        """The summary as written; for a file without one (the older schema has no summary field), the first
        sentences of its first section with text, up to BRIEF_CHARS, so that no hit or listing shows a blank."""
        if self.summary.strip():
            return self.summary
        for section in self.sections:
            text = " ".join(_MARKUP.sub(lambda m: m.group(1) or "", section.text).split())
            if not text:
                continue
            out = ""
            for sentence in _SENTENCE_END.split(text):
                if out and len(out) + 1 + len(sentence) > BRIEF_CHARS:
                    break
                out = f"{out} {sentence}".strip()
            if len(out) > BRIEF_CHARS:
                cut = out[:BRIEF_CHARS].rsplit(" ", 1)[0]
                out = cut.rstrip(",;:") + " ..."
            return out
        return ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sections"] = [asdict(s) for s in self.sections]
        data["context_labels"] = dict(self.context_labels)
        data["scores"] = dict(self.scores)
        data["domains"] = list(self.domains)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], sections: Sequence[Section] | None = None) -> Pattern:
        """Inverse of `to_dict` (used by the index store); `sections`, when given, stands in for the row's own."""
        return cls(
            slug=data["slug"],
            title=data["title"],
            path=data["path"],
            schema=data["schema"],
            id=data.get("id"),
            aliases=tuple(data.get("aliases", ())),
            summary=data.get("summary", ""),
            epigraph=data.get("epigraph", ""),
            context_labels=tuple((k, v) for k, v in data.get("context_labels", {}).items()),
            domain=data.get("domain"),
            cross_domains=tuple(data.get("cross_domains", ())),
            legacy_domain=data.get("legacy_domain"),
            commons_domains=tuple(data.get("commons_domains", ())),
            tension=data.get("tension", ""),
            keywords=tuple(data.get("keywords", ())),
            scores=tuple((k, v) for k, v in data.get("scores", {}).items()),
            overall_score=data.get("overall_score"),
            lifecycle=Lifecycle(**data.get("lifecycle", {})),
            relationships=tuple(Relationship(**r) for r in data.get("relationships", ())),
            entities=tuple(Entity(**e) for e in data.get("entities", ())),
            communities=tuple(Community(**c) for c in data.get("communities", ())),
            provenance=Provenance(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.get("provenance", {}).items()}),
            sections=tuple(Section(**s) for s in data.get("sections", ())) if sections is None else sections,
            content_hash=data.get("content_hash", ""),
        )
