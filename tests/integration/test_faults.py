"""A fault-injected library, built into a real index: every good file indexed, every bad one reported.

The library holds four good patterns (one with fields of the wrong type that can be read around) beside
one file for each fault: invalid YAML, no front matter, a binary file, an empty file, a 5 MB file,
non-UTF-8 bytes, a duplicate slug, a slug of the wrong type, an impossible date, a symlink loop, and a
file removed between the listing and the read. The counts and every reason are checked exactly.
"""

from __future__ import annotations

import errno
import os

import pytest
from fastapi.testclient import TestClient

import rag.load.library
from rag.config import BuildSettings, Settings
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.records.pattern import Problem
from rag.search.retriever import Retriever
from rag.serve.http import create_app
from support import front_matter, write_pattern

SECTIONS = ["Context", "Problem", "Solution", "Implementation", "Consequences", "Known Uses", "Cognitive Era", "Vitality"]
GOOD = {"bees": "keeping honey bees", "bikes": "repairing bicycles together", "bread": "baking sourdough bread"}


def body(topic: str) -> str:
    return "\n".join(
        f"### Section {n}: {name}\n\n{name} of {topic}: a paragraph about {topic} and nothing else.\n" for n, name in enumerate(SECTIONS, 1)
    )


def error(path: str, location: str, reason: str) -> Problem:
    return Problem(path, location, reason, "error")


def warning(path: str, location: str, reason: str) -> Problem:
    return Problem(path, location, reason, "warning")


def fault_library(root):
    """Writes the library; returns the problems the loader must report, in report order."""
    for slug, topic in GOOD.items():
        write_pattern(root, slug, front_matter(slug, summary=f"A pattern about {topic}."), body(topic))
    # good, with fields of the wrong type read around (each a warning); NaN, inf and a 400-digit int are refused
    # (the int once stopped the whole scan with OverflowError; NaN reached the CLI's --json as invalid JSON)
    typed = front_matter(
        "typed",
        summary="A pattern about tuning pianos.",
        aliases=42,
        context_labels={"corporate": ["a", "list"]},
        lifecycle={"status": "stable", "confidence": float("nan")},
        ontology={"domain": "testing", "commons_assessment": {"resilience": "high", "autonomy": float("inf"), "overall_score": 10**400}},
    )
    write_pattern(root, "typed", typed, body("tuning pianos"))

    write_pattern(root, "broken-yaml", 'slug: broken-yaml\ntitle: "unterminated\n')
    (root / "plain.md").write_text("# Plain\n\n## Overview\n\nNo front matter here.\n")
    (root / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "empty.md").write_text("")
    huge = write_pattern(root, "huge", front_matter("huge"), body("a very long pattern") + "filler line\n" * (5 * 1024 * 1024 // 12))
    (root / "latin1.md").write_bytes(  # "é" is byte 27: 4 + 13 + len("title: Caf")
        "---\nslug: latin1\ntitle: Café\n---\n## A\n\ntext\n".encode("latin-1")
    )
    write_pattern(root, "zz-duplicate", front_matter("bees", title="Bees Again"), body("keeping honey bees again"))
    write_pattern(root, "wrong-slug", {"slug": ["a", "list"], "title": "Wrong Slug"})
    write_pattern(root, "bad-date", "slug: bad-date\ntitle: Bad Date\nlifecycle:\n  last_pruned: 2024-13-45\n", body("dates"))
    os.symlink(root, root / "loop", target_is_directory=True)  # a folder containing itself: not followed
    os.symlink("self.md", root / "self.md")  # a file link to itself
    write_pattern(root, "vanishing", front_matter("vanishing"), body("disappearing"))

    size = huge.stat().st_size
    assert size > 5 * 1024 * 1024
    return (
        error("bad-date.md", "front matter", "YAML value cannot be read (month must be in 1..12); quote it to keep it as text"),
        error("binary.md", "file", "binary file (contains NUL bytes)"),
        error(
            "broken-yaml.md",
            "line 4",
            "YAML error at column 1: found unexpected end of stream (while scanning a quoted scalar started at line 3)",
        ),
        error("empty.md", "file", "empty file"),
        error(
            "huge.md",
            "file",
            f"file too large: {size} bytes, above the limit of {rag.load.library.MAX_FILE_BYTES} bytes (2 MB); raise it with --max-file-mb",
        ),
        error("latin1.md", "line 3", "not UTF-8: invalid byte at offset 27"),
        error("plain.md", "line 1", "no front matter: the file must start with a '---' line"),
        error("self.md", "file", f"cannot stat file: {os.strerror(errno.ELOOP)}"),
        warning("typed.md", "field aliases", "expected a list of strings, got int; ignored"),
        warning("typed.md", "field context_labels.corporate", "expected text, got list; ignored"),
        warning("typed.md", "field ontology.commons_assessment.resilience", "expected a number, got 'high'; ignored"),
        warning("typed.md", "field ontology.commons_assessment.autonomy", "expected a finite number, got inf; ignored"),
        warning(
            "typed.md",
            "field ontology.commons_assessment.overall_score",
            "expected a finite number, got an integer of about 401 digits; ignored",
        ),
        warning("typed.md", "field lifecycle.confidence", "expected a finite number, got nan; ignored"),
        error("vanishing.md", "file", "file disappeared or is a broken symlink"),
        error("wrong-slug.md", "field slug", "slug must be text, got list"),
        error(
            "zz-duplicate.md",
            "field slug",
            "duplicate slug 'bees' in bees.md, zz-duplicate.md; indexed bees.md, whose name is the slug; rename or fix this file",
        ),
    )


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, embedder, embedding_cache_dir):
    """The library, its expected problems, and the index built from it while one file vanishes mid-scan."""
    root = tmp_path_factory.mktemp("faulty-library")
    expected = fault_library(root)
    listing = rag.load.library.iter_markdown_files

    def listing_then_delete(folder, unreadable=None):
        paths = list(listing(folder, unreadable))  # the listing still has vanishing.md ...
        (root / "vanishing.md").unlink()  # ... which is gone when it comes to be read
        yield from paths

    index_dir = tmp_path_factory.mktemp("faulty-index")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rag.load.library, "iter_markdown_files", listing_then_delete)
        summary = build_index(BuildSettings(root, index_dir, cache_dir=embedding_cache_dir), embedder)
    return summary, expected, index_dir


def test_every_good_file_is_indexed_and_every_bad_one_reported_with_its_reason(faulty):
    summary, expected, index_dir = faulty
    index = SearchIndex.open(index_dir)
    assert [p.slug for p in index.patterns] == ["bees", "bikes", "bread", "typed"]
    assert index.problems == expected
    # 4 good files + 11 faulty ones; each file is a pattern or an error (a duplicate slug is an error too)
    assert (summary.files, summary.patterns, summary.errors, summary.problems) == (4 + 11, 4, 11, 11 + 6)
    assert summary.files == summary.patterns + summary.errors
    assert index.manifest.counts.to_dict() == {"files": 15, "patterns": 4, "chunks": 4 * 9, "problems": 17, "errors": 11}
    assert {c.slug for c in index.chunks} == {"bees", "bikes", "bread", "typed"}
    assert index.pattern("bees").title == "Bees"  # the file named after its slug wins; the duplicate is an error


def test_the_faulty_index_answers_and_serves_every_pattern(faulty, embedder):
    _, _, index_dir = faulty
    index = SearchIndex.open(index_dir)
    assert Retriever(index, embedder).search("honey and hives", k=2).slugs[0] == "bees"
    typed = index.pattern("typed")
    assert (typed.aliases, typed.scores, typed.overall_score, typed.lifecycle.confidence) == ((), (), None, None)
    with TestClient(create_app(Settings(index_dir=index_dir), embedder=embedder)) as client:
        for slug in ("bees", "bikes", "bread", "typed"):
            response = client.get(f"/patterns/{slug}")
            assert response.status_code == 200, response.text
            assert response.json()["pattern"]["slug"] == slug
        assert client.get("/stats").json()["counts"] == {"files": 15, "patterns": 4, "chunks": 36, "problems": 17, "errors": 11, "edges": 0}
