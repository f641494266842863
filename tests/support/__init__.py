"""Shared test helpers: paths, the shelves query, a pattern-file builder and a tiny three-pattern library.

Beside them: `index_fixtures` (the real-model and fake-encoder indexes, loaded by tests/conftest.py),
`milvus_fixtures` (a real Milvus Lite server), `web_support` (the browser tests' server and Chromium) and
`adapt_library` (the `rag adapt` tests' library). The load generator and Milvus Lite server are the bench's
(`bench.loadgen`, `bench.milvus_lite`): tests import that one copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rag.records.pattern import CANONICAL_SECTIONS

REPO = Path(__file__).resolve().parents[2]
PATTERNS = REPO / "patterns"
CORPORA = REPO.parent / "shared" / "corpora"
SHELVES = "our shelves are full of stock nobody ordered"  # answered by pull-based-replenishment in patterns/

# The newest-generation body: eight `### Section N: Name` headings, each with one line of text.
CANONICAL_BODY = "\n".join(f"### Section {n}: {name}\n\n{name} text.\n" for n, name in enumerate(CANONICAL_SECTIONS, start=1))


def front_matter(slug: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """A minimal valid newest-generation front matter; keyword arguments add or replace fields."""
    data: dict[str, Any] = {"slug": slug, "title": title or slug.replace("-", " ").title(), "ontology": {"domain": "testing"}}
    data.update(extra)
    return data


def write_pattern(tmp_path: Path, name: str, front_matter: dict[str, Any] | str, body: str = CANONICAL_BODY) -> Path:
    """Write `name` (".md" added when missing; may contain folders) as `---`, front matter, `---`, body.

    `front_matter` is a dict (dumped as YAML in insertion order) or raw YAML text written as is.
    """
    path = tmp_path / (name if name.endswith(".md") else f"{name}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(front_matter, dict):
        text = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True)
    else:
        text = front_matter if front_matter.endswith("\n") else front_matter + "\n"
    path.write_text(f"---\n{text}---\n{body}", encoding="utf-8")
    return path


def topic_body(topic: str) -> str:
    """Eight canonical sections, each one sentence about `topic`."""
    return "\n".join(
        f"### Section {n}: {name}\n\n{name} of {topic}: a paragraph about {topic} and nothing else.\n"
        for n, name in enumerate(CANONICAL_SECTIONS, 1)
    )


SMALL_TOPICS = (("bees", "keeping honey bees"), ("bikes", "repairing bicycles together"), ("bread", "baking sourdough bread"))


def small_library(root: Path) -> Path:
    """Three patterns on obviously different topics; 8 sections + summary each = 9 chunks each."""
    for slug, topic in SMALL_TOPICS:
        write_pattern(root, slug, front_matter(slug, summary=f"A pattern about {topic}."), topic_body(topic))
    return root
