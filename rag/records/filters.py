"""What a query may be restricted to: one domain, one context (reader), one lifecycle status, a minimum confidence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Filters:
    domain: str | None = None
    context: str | None = None
    status: str | None = None
    min_confidence: float | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.domain, self.context, self.status, self.min_confidence))

    def to_dict(self) -> dict:
        return {"domain": self.domain, "context": self.context, "status": self.status, "min_confidence": self.min_confidence}
