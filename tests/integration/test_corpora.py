"""The loader and chunker on the real libraries in ../shared/corpora (skipped when that folder is absent)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag.chunking import chunk_library
from rag.load.library import load_library
from rag.records.pattern import CANONICAL_SECTIONS, Problem

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
WINDOW = 256
CANONICAL_ROLES = {name.lower().replace(" ", "-") for name in CANONICAL_SECTIONS}

pytestmark = [pytest.mark.corpora, pytest.mark.skipif(not CORPORA.is_dir(), reason=f"corpora not present at {CORPORA}")]


@pytest.fixture(scope="module")
def commons():
    return load_library(CORPORA / "commons-os")


@pytest.fixture(scope="module")
def commons_chunks(commons, token_counter):
    """The slow part, done once. The tokenizer releases the GIL, so a few threads cut the wall time."""
    patterns, workers = commons.patterns, 4
    size = -(-len(patterns) // workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(lambda start: chunk_library(patterns[start : start + size], token_counter), range(0, len(patterns), size))
        return [chunk for part in parts for chunk in part]  # library order


@pytest.fixture(scope="module")
def bmn():
    return load_library(CORPORA / "bmn")


@pytest.fixture(scope="module")
def bmn_chunks(bmn, token_counter):
    return chunk_library(bmn.patterns, token_counter)


# commons-os: 3,616 files, two schema generations, two broken files ---------------------------


def test_commons_os_counts(commons):
    counts = commons.counts()
    assert (counts["files"], counts["patterns"], counts["errors"]) == (3616, 3614, 2)
    assert (counts["schema_ontology"], counts["schema_classification"]) == (2072, 1542)


def test_commons_os_reports_exactly_the_two_broken_files(commons):
    found = [(p.path, p.location, p.severity) for p in commons.errors]
    assert found == [("animal-communication-practice.md", "line 12", "error"), ("animal-relationship-ethics.md", "line 13", "error")]
    # the wording in the middle differs between libyaml and pure-Python PyYAML; the ends do not
    first, second = (p.reason for p in commons.errors)
    assert first.startswith("YAML error at column 3: ") and first.endswith("(while parsing a flow mapping started at line 11)")
    assert second.startswith("YAML error at column 3: ") and second.endswith("(while parsing a flow mapping started at line 12)")


def test_commons_os_every_other_file_becomes_a_pattern(commons):
    files = {p.name for p in (CORPORA / "commons-os").glob("*.md")}
    loaded = {p.path for p in commons.patterns}
    assert files - loaded == {"animal-communication-practice.md", "animal-relationship-ethics.md"}
    assert len({p.slug for p in commons.patterns}) == 3614


def test_commons_os_warning_kinds(commons):
    kinds = Counter(p.reason.split(":")[0].split(" '")[0] for p in commons.warnings)
    assert set(kinds) <= {"dangling relationship", "empty section", "no sections", "missing canonical section"}
    assert kinds["dangling relationship"] > 0


def test_commons_os_chunk_ids_are_unique(commons, commons_chunks):
    ids = Counter(c.id for c in commons_chunks)
    assert [chunk_id for chunk_id, n in ids.items() if n > 1] == []
    assert {c.slug for c in commons_chunks} == {p.slug for p in commons.patterns}  # every pattern is searchable


def test_commons_os_every_chunk_fits_the_window(commons_chunks, window_tokens):
    sizes = window_tokens([c.text for c in commons_chunks])
    over = [(c.id, n) for c, n in zip(commons_chunks, sizes) if n > WINDOW]
    assert over == []
    assert max(sizes) > WINDOW - 32  # long sections really are packed up to the window


# bmn: 60 newest-schema patterns, one truncated file ------------------------------------------


def test_bmn_loads_clean(bmn):
    assert bmn.counts() == {"files": 60, "patterns": 60, "errors": 0, "warnings": len(bmn.warnings), "schema_ontology": 60}
    assert bmn.errors == ()


def test_bmn_canonical_sections(bmn):
    incomplete = {
        p.slug: sorted(CANONICAL_ROLES - {s.role for s in p.sections})
        for p in bmn.patterns
        if not CANONICAL_ROLES <= {s.role for s in p.sections}
    }
    assert incomplete == {"incentive-based-retention": ["cognitive-era", "vitality"]}
    assert [p for p in bmn.warnings if not p.reason.startswith("dangling relationship:")] == [
        Problem("incentive-based-retention.md", "body", "missing canonical section 'Cognitive Era'", "warning"),
        Problem("incentive-based-retention.md", "body", "missing canonical section 'Vitality'", "warning"),
    ]


def test_bmn_chunks(bmn, bmn_chunks, window_tokens):
    assert len({c.id for c in bmn_chunks}) == len(bmn_chunks)
    assert max(window_tokens([c.text for c in bmn_chunks])) <= WINDOW
    for pattern in bmn.patterns:
        ids = {c.id for c in bmn_chunks if c.slug == pattern.slug}
        expected = {"summary", "tension", *(f"context-{k}" for k in ("corporate", "government", "activist", "tech", "academic"))}
        assert {f"{pattern.slug}#{key}" for key in expected} <= ids, pattern.slug
