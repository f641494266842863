"""Split a pattern body into sections and give each a role.

Handles every heading style seen in real libraries: `### Section 3: Solution`, `### 3. Key Practices`,
`## 1. Overview (200-300 words)`, plain `## Overview`, and sub-headings down to level 4. Headings inside
fenced code blocks are ignored. Level-1 headings (a repeated title) are not sections.
"""

from __future__ import annotations

import re

from rag.records.pattern import Section

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_NUMBERING = re.compile(r"^(?:section\s+\d+(?:\.\d+)*\s*[:.\-–—]?\s*|\d+(?:\.\d+)*\s*[.):\-–—]?\s+)", re.I)
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")

# Ordered: the first rule whose words occur in the cleaned heading wins.
_ROLE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cognitive-era", ("cognitive era", "cognitive-era", "ai era")),
    ("known-uses", ("known uses", "known use", "evidence", "case stud", "examples", "in practice", "real-world")),
    ("vitality", ("vitality", "pillars assessment", "commons alignment", "signs of life", "quality without a name")),
    ("consequences", ("consequence", "anti-pattern", "gotcha", "trade-off", "tradeoff", "risks", "pitfalls", "limitations")),
    ("implementation", ("implementation", "key practices", "how to", "getting started", "steps", "practices")),
    ("solution", ("solution", "core principles", "principles", "mechanism")),
    ("problem", ("problem", "rationale", "forces", "tension", "challenge")),
    ("context", ("context", "overview", "when to use", "background", "introduction", "applicability", "description")),
)


def clean_heading(heading: str) -> str:
    """`### Section 3: Solution (200 words)` -> `Solution`; `3. Key Practices` -> `Key Practices`."""
    text = heading.strip().strip("*_").strip()
    text = _NUMBERING.sub("", text)
    text = _PARENTHETICAL.sub("", text)
    return text.strip().rstrip(":").strip() or heading.strip()


# Each word must start a word of the heading: "Conflict Resolution" is not "solution", "Extensions" not "tension".
_ROLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (role, re.compile("|".join(rf"\b{re.escape(word)}" for word in words))) for role, words in _ROLE_RULES
)


def role_of(title: str) -> str:
    """Map a cleaned heading to one of the section roles (`other` when nothing matches)."""
    lowered = title.lower()
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(lowered):
            return role
    return "other"


def split_sections(body: str, first_line: int = 1) -> tuple[str, tuple[Section, ...]]:
    """Return (preamble, sections). `first_line` is the file line number of the body's first line.

    A level-3/4 heading that matches no role inherits the role of the enclosing higher-level
    section (a `#### 2.1 Sorting` inside `### 2. Core Principles` is still solution text).
    """
    lines = body.splitlines()
    preamble: list[str] = []
    sections: list[Section] = []
    current: dict | None = None
    buffer: list[str] = []
    in_fence = False
    parents: dict[int, str] = {}

    def flush() -> None:
        if current is not None:
            text = _strip_rules("\n".join(buffer))
            sections.append(Section(current["title"], current["role"], current["level"], text, current["line"]))

    for offset, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match and 2 <= len(match.group(1)) <= 4:
            flush()
            level = len(match.group(1))
            title = clean_heading(match.group(2))
            role = role_of(title)
            if role == "other":
                role = next((parents[lv] for lv in sorted(parents, reverse=True) if lv < level), "other")
            parents = {lv: r for lv, r in parents.items() if lv < level}
            parents[level] = role
            current = {"title": title, "role": role, "level": level, "line": first_line + offset}
            buffer = []
        elif match and len(match.group(1)) == 1 and current is None:
            continue  # a level-1 title before any section repeats the pattern's title
        elif current is None:
            preamble.append(line)
        else:
            buffer.append(line)
    flush()
    return _strip_rules("\n".join(preamble)), tuple(sections)


def _strip_rules(text: str) -> str:
    """Drop horizontal rules (`---`) and surrounding blank lines that separate sections."""
    kept = [line for line in text.splitlines() if line.strip() not in ("---", "***", "___")]
    return "\n".join(kept).strip()
