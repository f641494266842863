"""Section splitting and roles for every heading style seen in real libraries."""

from __future__ import annotations

import pytest

from rag.load.sections import clean_heading, role_of, split_sections
from rag.records.pattern import Section


@pytest.mark.parametrize(
    ("heading", "title", "role"),
    [
        ("Section 1: Context", "Context", "context"),
        ("Section 2: Problem", "Problem", "problem"),
        ("Section 3: Solution", "Solution", "solution"),
        ("Section 4: Implementation", "Implementation", "implementation"),
        ("Section 5: Consequences", "Consequences", "consequences"),
        ("Section 6: Known Uses", "Known Uses", "known-uses"),
        ("Section 7: Cognitive Era", "Cognitive Era", "cognitive-era"),
        ("Section 8: Vitality", "Vitality", "vitality"),
        ("1. Overview", "Overview", "context"),
        ("1. Overview (200-300 words)", "Overview", "context"),
        ("2. Core Principles", "Core Principles", "solution"),
        ("3. Key Practices", "Key Practices", "implementation"),
        ("4. Application Context", "Application Context", "context"),
        ("5. Implementation", "Implementation", "implementation"),
        ("6. Evidence & Impact", "Evidence & Impact", "known-uses"),
        ("7. Cognitive Era Considerations", "Cognitive Era Considerations", "cognitive-era"),
        ("8. Commons Alignment Assessment", "Commons Alignment Assessment", "vitality"),
        ("9. Resources & References", "Resources & References", "other"),
        ("5. 7 Pillars Assessment", "7 Pillars Assessment", "vitality"),
        ("7. Anti-Patterns and Gotchas", "Anti-Patterns and Gotchas", "consequences"),
        ("Overview", "Overview", "context"),
        ("**Section 2: Problem**", "Problem", "problem"),
        ("2.1 Sorting", "Sorting", "other"),
        ("Conflict Resolution", "Conflict Resolution", "other"),  # "resolution" is not "solution"
        ("Extensions", "Extensions", "other"),  # "extension" is not "tension"
    ],
)
def test_heading_title_and_role(heading, title, role):
    assert clean_heading(heading) == title
    assert role_of(title) == role


BODY = """\
# The Pattern Title

> An epigraph.

## Overview

Plain level-2 heading.

### Section 3: Solution

**Therefore, do this.**

#### Sorting things out

Sub-heading with no role of its own: inherits solution.

#### Examples

Sub-heading with its own role keeps it.

### 3. Key Practices

```markdown
## Not a heading: inside a fence
### Nor this
```

After the fence.

## 1. Overview (200-300 words)

---

Numbered with a word budget.

### 9. Resources & References

- a link
"""


def test_split_sections_every_style():
    preamble, sections = split_sections(BODY, first_line=10)
    assert preamble == "> An epigraph."
    assert sections == (
        Section("Overview", "context", 2, "Plain level-2 heading.", 14),
        Section("Solution", "solution", 3, "**Therefore, do this.**", 18),
        Section("Sorting things out", "solution", 4, "Sub-heading with no role of its own: inherits solution.", 22),
        Section("Examples", "known-uses", 4, "Sub-heading with its own role keeps it.", 26),
        Section(
            "Key Practices",
            "implementation",
            3,
            "```markdown\n## Not a heading: inside a fence\n### Nor this\n```\n\nAfter the fence.",
            30,
        ),
        Section("Overview", "context", 2, "Numbered with a word budget.", 39),
        Section("Resources & References", "context", 3, "- a link", 45),  # no role of its own: under "## 1. Overview"
    )


def test_level_four_inherits_from_the_nearest_enclosing_section_only():
    body = "## Problem\n\n#### Detail A\n\na\n\n## Resources\n\n#### Detail B\n\nb\n"
    _, sections = split_sections(body)
    assert [(s.title, s.role, s.line) for s in sections] == [
        ("Problem", "problem", 1),
        ("Detail A", "problem", 3),
        ("Resources", "other", 7),
        ("Detail B", "other", 9),
    ]


def test_level_one_heading_after_a_section_is_text_and_deeper_levels_are_not_sections():
    body = "# Title\n\n## Context\n\n# Stray level one\n\n##### Level five\n\ntext\n"
    preamble, sections = split_sections(body)
    assert preamble == ""
    assert sections == (Section("Context", "context", 2, "# Stray level one\n\n##### Level five\n\ntext", 3),)


def test_tilde_fences_hide_headings_too():
    body = "## Implementation\n\n~~~\n## hidden\n~~~\n"
    _, sections = split_sections(body)
    assert [(s.title, s.text) for s in sections] == [("Implementation", "~~~\n## hidden\n~~~")]


def test_no_headings_means_all_preamble():
    assert split_sections("Just text.\n\nMore text.\n") == ("Just text.\n\nMore text.", ())
