"""Tolerant, typed reads of front-matter fields, recording a warning for every type it had to fix.

Real libraries vary field types: scores as int, float or string; entities as dicts or plain strings;
relationship items as `{slug, weight}`, `{id, weight, description}` or bare ids; `era` as list or string;
dates as dates, strings or null. Each accessor returns the normalized value and never raises.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rag.records.pattern import RELATIONSHIP_KINDS, Community, Entity, Lifecycle, Provenance, Relationship

STARS = 5.0  # the newest generation rates confidence in 1-5 stars (FORMAT.md)

_MISSING = object()


class FieldReader:
    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.warnings: list[tuple[str, str]] = []

    def warn(self, location: str, reason: str) -> None:
        self.warnings.append((location, reason))

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return default
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return default
        return node

    # scalars -------------------------------------------------------------------------------
    def text(self, dotted: str) -> str:
        value = self.get(dotted)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, (int, float, dt.date)) and not isinstance(value, bool):
            return str(value)
        self.warn(f"field {dotted}", f"expected text, got {type(value).__name__}; ignored")
        return ""

    def number(self, dotted: str) -> float | None:
        return self._to_number(self.get(dotted), dotted)

    def _to_number(self, value: Any, dotted: str) -> float | None:
        """A finite float; NaN, infinities and integers beyond float range are refused (JSON cannot carry them)."""
        if value is None or isinstance(value, bool):
            return None
        number: float | None = None
        if isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        elif isinstance(value, str):
            try:
                number = float(value.strip().split("/")[0])
            except ValueError:
                pass
        if number is None:
            self.warn(f"field {dotted}", f"expected a number, got {_short(value)}; ignored")
            return None
        if not math.isfinite(number):
            self.warn(f"field {dotted}", f"expected a finite number, got {_short(value)}; ignored")
            return None
        return number

    def strings(self, dotted: str) -> tuple[str, ...]:
        """A list of strings; a bare string becomes a one-item list; numbers are stringified (with a warning)."""
        value = self.get(dotted)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value.strip(),) if value.strip() else ()
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                if isinstance(item, str) and item.strip():
                    out.append(item.strip())
                elif isinstance(item, (int, float)) and not isinstance(item, bool):
                    self.warn(f"field {dotted}", f"list item {item!r} is a number, not text; kept as {str(item)!r}")
                    out.append(str(item))
                elif item is not None:
                    self.warn(f"field {dotted}", f"list item of type {type(item).__name__} ignored")
            return tuple(out)
        self.warn(f"field {dotted}", f"expected a list of strings, got {type(value).__name__}; ignored")
        return ()

    # structures ----------------------------------------------------------------------------
    def context_labels(self, known: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        value = self.get("context_labels")
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.warn("field context_labels", f"expected a mapping, got {type(value).__name__}; ignored")
            return ()
        out = []
        for key, label in value.items():
            key = str(key).strip().lower()
            if key not in known:
                self.warn(f"field context_labels.{key}", f"unknown context key {key!r} (known: {', '.join(known)})")
            if isinstance(label, str) and label.strip():
                out.append((key, label.strip()))
            elif label is not None:
                self.warn(f"field context_labels.{key}", f"expected text, got {type(label).__name__}; ignored")
        return tuple(out)

    def scores(self, dotted: str) -> tuple[tuple[str, float], ...]:
        value = self.get(dotted)
        if not isinstance(value, dict):
            return ()
        out = []
        for key, raw in value.items():
            if key in ("overall_score", "vitality_reasoning") or isinstance(raw, (dict, list)):
                continue
            number = self._to_number(raw, f"{dotted}.{key}")
            if number is not None:
                out.append((str(key), number))
        return tuple(out)

    def lifecycle(self) -> Lifecycle:
        status = self.text("lifecycle.status") or self.text("classification.status") or None
        stars = self.number("lifecycle.confidence")
        if stars is not None and not (stars <= 1 and not float(stars).is_integer()):
            confidence = min(max(stars, 0.0), STARS) / STARS  # 1-5 stars onto the 0-1 scale
        else:
            confidence, stars = (stars if stars is not None else self.number("confidence_score")), None
            if confidence is not None:
                confidence = min(max(confidence, 0.0), 1.0)
        version = self.text("lifecycle.version") or self.text("version") or None
        return Lifecycle(
            status=status.lower() if status else None,
            confidence=confidence,
            confidence_stars=stars,
            version=version,
            usage_stage=self.text("lifecycle.usage_stage") or None,
            adoption_stage=self.text("lifecycle.adoption_stage") or None,
        )

    def relationships(self) -> tuple[Relationship, ...]:
        edges: list[Relationship] = []
        nested = self.get("relationships")
        if nested is not None and not isinstance(nested, dict):
            self.warn("field relationships", f"expected a mapping, got {type(nested).__name__}; ignored")
            nested = None
        for kind in RELATIONSHIP_KINDS:
            for source, items in ((f"relationships.{kind}", (nested or {}).get(kind)), (kind, self.data.get(kind))):
                if items is None:
                    continue
                if isinstance(items, (str, dict)):
                    items = [items]
                if not isinstance(items, list):
                    self.warn(f"field {source}", f"expected a list, got {type(items).__name__}; ignored")
                    continue
                for item in items:
                    edge = self._edge(kind, item, source)
                    if edge is not None:
                        edges.append(edge)
        return tuple(dict.fromkeys(edges))

    def _edge(self, kind: str, item: Any, source: str) -> Relationship | None:
        if isinstance(item, str) and item.strip():
            return Relationship(kind, item.strip())
        if isinstance(item, dict):
            target = item.get("slug") or item.get("id") or item.get("target")
            if isinstance(target, str) and target.strip():
                weight = self._to_number(item.get("weight"), f"{source}.weight")
                desc = item.get("description")
                return Relationship(kind, target.strip(), weight, desc.strip() if isinstance(desc, str) else "")
        self.warn(f"field {source}", f"relationship item {item!r} has no slug or id; ignored")
        return None

    def entities(self) -> tuple[Entity, ...]:
        out = []
        for item in self._list("graph_garden.entities"):
            if isinstance(item, str) and item.strip():
                out.append(Entity(id=item.strip(), label=item.strip()))
            elif isinstance(item, dict) and (item.get("id") or item.get("label")):
                out.append(
                    Entity(
                        id=str(item.get("id") or item.get("label")),
                        type=str(item.get("type") or ""),
                        label=str(item.get("label") or item.get("id")),
                        relevance=self._to_number(item.get("relevance"), "graph_garden.entities.relevance"),
                    )
                )
        return tuple(out)

    def communities(self) -> tuple[Community, ...]:
        out = []
        for item in self._list("graph_garden.communities"):
            if isinstance(item, str) and item.strip():
                out.append(Community(id=item.strip(), label=item.strip()))
            elif isinstance(item, dict) and (item.get("id") or item.get("label")):
                out.append(
                    Community(
                        id=str(item.get("id") or item.get("label")),
                        label=str(item.get("label") or item.get("id")),
                        source=str(item.get("source") or ""),
                        confidence=self._to_number(item.get("confidence"), "graph_garden.communities.confidence"),
                    )
                )
        return tuple(out)

    def provenance(self) -> Provenance:
        return Provenance(
            contributors=tuple(s for s in (self._source_text(x) for x in self._list("contributors")) if s),
            sources=tuple(s for s in (self._source_text(x) for x in self._list("sources")) if s),
            license=self.text("license") or None,
            attribution=self.text("attribution") or None,
            collection=self.text("collection") or None,
        )

    @staticmethod
    def _source_text(item: Any) -> str:
        if isinstance(item, str):
            return item.strip()
        if isinstance(item, dict):
            named = item.get("name") or item.get("title")
            if isinstance(named, str):
                return named.strip()
            return " — ".join(str(v) for v in item.values() if isinstance(v, (str, int, float)))
        return ""

    def _list(self, dotted: str) -> list:
        value = self.get(dotted)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, (str, dict)):
            return [value]
        self.warn(f"field {dotted}", f"expected a list, got {type(value).__name__}; ignored")
        return []


def _short(value: Any, limit: int = 40) -> str:
    text = (
        repr(value)
        if not isinstance(value, int) or value.bit_length() < 128
        else f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."
