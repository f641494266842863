"""The unit of search: one section (or part of one) of a pattern, with the pattern's filterable metadata."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """A searchable passage with its pattern's filterable metadata."""

    id: str
    slug: str
    role: str
    section: str
    text: str
    part: int = 1
    context: str | None = None  # set on context-label chunks

    @property
    def body(self) -> str:
        """The text without its first line, the header naming the pattern and section (which the model sees)."""
        return self.text.split("\n", 1)[-1]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "slug": self.slug,
            "role": self.role,
            "section": self.section,
            "text": self.text,
            "part": self.part,
            "context": self.context,
        }
