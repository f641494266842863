"""The loader on tiny libraries written to tmp_path: one file per problem kind, exact reports."""

from __future__ import annotations

import datetime as dt
import errno
import os
import threading

import pytest
import yaml

from rag.load.library import load_library
from rag.records.pattern import Community, Entity, Lifecycle, Problem, Relationship
from support import CANONICAL_BODY, front_matter, write_pattern

LIBYAML = getattr(yaml, "CSafeLoader", None) is not None


def error(path: str, location: str, reason: str) -> Problem:
    return Problem(path, location, reason, "error")


def warning(path: str, location: str, reason: str) -> Problem:
    return Problem(path, location, reason, "warning")


def only_problem(tmp_path, **kwargs) -> Problem:
    report = load_library(tmp_path, **kwargs)
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


# errors: the file is unusable and skipped ----------------------------------------------------


def test_no_front_matter(tmp_path):
    (tmp_path / "plain.md").write_text("# Plain\n\n## Overview\n\nNo front matter here.\n")
    report = load_library(tmp_path)
    assert report.problems == (error("plain.md", "line 1", "no front matter: the file must start with a '---' line"),)
    assert report.patterns == ()


def test_dashes_that_are_not_a_delimiter_line_are_no_front_matter(tmp_path):
    (tmp_path / "rule.md").write_text("---x\nslug: rule\n---\ntitle: Rule\n---\nbody\n")
    assert only_problem(tmp_path) == error("rule.md", "line 1", "no front matter: the file must start with a '---' line")


def test_unclosed_front_matter(tmp_path):
    (tmp_path / "open.md").write_text("---\nslug: open\ntitle: Open\n\n## Overview\n\ntext\n")
    assert only_problem(tmp_path) == error("open.md", "line 1", "front matter is not closed by a second '---' line")


def test_yaml_error_reports_the_file_line(tmp_path):
    # line 1 '---', line 2 slug, line 3 the unterminated quote, line 4 summary, line 5 '---'
    write_pattern(tmp_path, "quote", 'slug: quote\ntitle: "Quote\nsummary: s\n')
    assert only_problem(tmp_path) == error(
        "quote.md", "line 5", "YAML error at column 1: found unexpected end of stream (while scanning a quoted scalar started at line 3)"
    )


def test_yaml_error_line_counts_blank_lines_after_the_opening_delimiter(tmp_path):
    # line 1 '---', lines 2-3 blank, line 4 slug, line 5 the unterminated quote, line 7 '---'
    write_pattern(tmp_path, "blank", '\n\nslug: blank\ntitle: "Blank\nsummary: s\n')
    assert only_problem(tmp_path) == error(
        "blank.md", "line 7", "YAML error at column 1: found unexpected end of stream (while scanning a quoted scalar started at line 5)"
    )


def test_yaml_error_in_a_flow_sequence(tmp_path):
    write_pattern(tmp_path, "flow", "slug: flow\ntitle: Flow\naliases: [a, b\nsummary: s\n")
    problem = only_problem(tmp_path)
    detail = "did not find expected ',' or ']'" if LIBYAML else "expected ',' or ']', but got ':'"
    assert problem == error("flow.md", "line 5", f"YAML error at column 8: {detail} (while parsing a flow sequence started at line 4)")


def test_missing_slug(tmp_path):
    write_pattern(tmp_path, "noslug", {"title": "No Slug"})
    assert only_problem(tmp_path) == error("noslug.md", "field slug", "missing slug")


def test_missing_title(tmp_path):
    write_pattern(tmp_path, "notitle", {"slug": "notitle"})
    assert only_problem(tmp_path) == error("notitle.md", "field title", "missing title")


@pytest.mark.parametrize("slug", ["../etc", "a/b", "Upper-Case", "-leading-dash", "with space"])
def test_invalid_slug(tmp_path, slug):
    write_pattern(tmp_path, "bad-slug", front_matter(slug))
    assert only_problem(tmp_path) == error(
        "bad-slug.md", "field slug", f"invalid slug {slug!r}: use lowercase letters, digits, '-', '.', '_'"
    )


def test_not_utf8(tmp_path):
    raw = b"---\nslug: latin\ntitle: caf\xe9\n---\n## Overview\n\ntext\n"
    (tmp_path / "latin.md").write_bytes(raw)
    assert only_problem(tmp_path) == error("latin.md", "line 3", "not UTF-8: invalid byte at offset 26")  # 4 + 12 + len("title: caf")


def test_binary_file(tmp_path):
    (tmp_path / "image.md").write_bytes(b"---\x00\x01\x02PNG\x00" * 10)
    assert only_problem(tmp_path) == error("image.md", "file", "binary file (contains NUL bytes)")


@pytest.mark.parametrize("content", ["", " \n\n\t\n"])
def test_empty_file(tmp_path, content):
    (tmp_path / "empty.md").write_text(content)
    assert only_problem(tmp_path) == error("empty.md", "file", "empty file")


def test_file_too_large(tmp_path):
    path = write_pattern(tmp_path, "big", front_matter("big"))
    size = path.stat().st_size
    assert only_problem(tmp_path, max_file_bytes=100) == error(
        "big.md", "file", f"file too large: {size} bytes, above the limit of 100 bytes (9.54e-05 MB); raise it with --max-file-mb"
    )
    assert load_library(tmp_path, max_file_bytes=size).problems == ()


@pytest.mark.parametrize(("yaml_text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_front_matter_not_a_mapping(tmp_path, yaml_text, kind):
    write_pattern(tmp_path, "listy", yaml_text)
    assert only_problem(tmp_path) == error("listy.md", "line 1", f"front matter must be a mapping, got {kind}")


def test_missing_root_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="pattern library folder not found"):
        load_library(tmp_path / "nowhere")


# warnings: the pattern loads, the report says what was fixed or is missing --------------------


def test_slug_differs_from_file_name(tmp_path):
    write_pattern(tmp_path, "file-name", front_matter("other-slug"))
    report = load_library(tmp_path)
    assert report.problems == (warning("file-name.md", "field slug", "slug 'other-slug' differs from the file name 'file-name'"),)
    assert [p.slug for p in report.patterns] == ["other-slug"]


def test_missing_canonical_section(tmp_path):
    body = CANONICAL_BODY.split("### Section 8: Vitality")[0]
    write_pattern(tmp_path, "no-vitality", front_matter("no-vitality"), body)
    assert only_problem(tmp_path) == warning("no-vitality.md", "body", "missing canonical section 'Vitality'")


def test_older_schema_is_not_checked_for_canonical_sections(tmp_path):
    fm = {"slug": "old", "title": "Old", "classification": {"domain": "operations"}}
    write_pattern(tmp_path, "old", fm, "### 1. Overview\n\ntext\n\n### 2. Core Principles\n\ntext\n")
    report = load_library(tmp_path)
    assert report.problems == ()
    assert report.patterns[0].schema == "classification"


def test_body_without_sections(tmp_path):
    write_pattern(tmp_path, "flat", front_matter("flat"), "Just a paragraph, no headings.\n")
    assert only_problem(tmp_path) == warning("flat.md", "body", "no sections: the body has no level 2-4 headings")


def test_unknown_context_key(tmp_path):
    labels = {"corporate": "A business reading.", "Military": "A military reading."}
    write_pattern(tmp_path, "ctx", front_matter("ctx", context_labels=labels))
    report = load_library(tmp_path)
    assert report.problems == (
        warning(
            "ctx.md",
            "field context_labels.military",
            "unknown context key 'military' (known: corporate, government, activist, tech, academic, community)",
        ),
    )
    assert report.patterns[0].context_labels == (("corporate", "A business reading."), ("military", "A military reading."))


def test_dangling_relationship(tmp_path):
    rels = {"enables": [{"slug": "present", "weight": 0.5}, {"slug": "ghost", "weight": 0.4}]}
    write_pattern(tmp_path, "source", front_matter("source", relationships=rels))
    write_pattern(tmp_path, "present", front_matter("present"))
    report = load_library(tmp_path)
    assert report.problems == (warning("source.md", "field relationships.enables", "dangling relationship: 'ghost' is not in the library"),)
    source = next(p for p in report.patterns if p.slug == "source")
    assert source.relationships == (Relationship("enables", "present", 0.5), Relationship("enables", "ghost", 0.4))


def test_a_duplicate_slug_is_an_error_naming_both_files_and_the_file_named_after_it_wins(tmp_path):
    """An impostor that sorts first (issue 26) no longer shadows the real pattern."""
    write_pattern(tmp_path, "real", front_matter("real", title="Real"))
    write_pattern(tmp_path, "aaa-impostor", front_matter("real", title="Impostor"))
    report = load_library(tmp_path)
    reason = "duplicate slug 'real' in aaa-impostor.md, real.md; indexed real.md, whose name is the slug; rename or fix this file"
    assert report.problems == (Problem("aaa-impostor.md", "field slug", reason, "error"),)
    assert [(p.slug, p.title, p.path) for p in report.patterns] == [("real", "Real", "real.md")]
    assert report.counts()["errors"] == 1


def test_a_duplicate_slug_with_no_one_file_named_after_it_indexes_none(tmp_path):
    write_pattern(tmp_path, "dup", front_matter("dup", title="First"))
    write_pattern(tmp_path, "sub/dup", front_matter("dup", title="Second"))
    report = load_library(tmp_path)
    reason = "duplicate slug 'dup' in dup.md, sub/dup.md; indexed none: no one file is named after the slug; rename or fix this file"
    assert report.problems == (Problem("dup.md", "field slug", reason, "error"), Problem("sub/dup.md", "field slug", reason, "error"))
    assert report.patterns == ()


def test_an_unreadable_folder_is_reported_not_skipped(tmp_path, monkeypatch):
    write_pattern(tmp_path, "ok", front_matter("ok"))
    write_pattern(tmp_path, "locked/inside", front_matter("inside"))
    real = os.scandir

    def scandir(path="."):  # the folder's permissions as a non-root user would meet them (the tests may run as root)
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = load_library(tmp_path)
    assert [p.slug for p in report.patterns] == ["ok"]
    assert [(p.path, p.location, p.severity) for p in report.problems] == [("locked", "folder", "error")]
    assert "cannot read this folder" in report.problems[0].reason


def test_empty_section(tmp_path):
    body = CANONICAL_BODY.replace("Known Uses text.\n", "")
    path = write_pattern(tmp_path, "hollow", front_matter("hollow"), body)
    line = path.read_text().splitlines().index("### Section 6: Known Uses") + 1
    assert only_problem(tmp_path) == warning("hollow.md", f"line {line}", "empty section 'Known Uses'")


def test_section_with_only_sub_sections_is_not_empty(tmp_path):
    body = CANONICAL_BODY.replace("Solution text.\n", "#### Step one\n\nDo this.\n")
    write_pattern(tmp_path, "nested", front_matter("nested"), body)
    report = load_library(tmp_path)
    assert report.problems == ()
    assert [(s.title, s.role) for s in report.patterns[0].sections if s.role == "solution"] == [
        ("Solution", "solution"),
        ("Step one", "solution"),
    ]


def test_aliases_as_numbers_are_kept_as_text_with_a_warning(tmp_path):
    write_pattern(tmp_path, "nums", front_matter("nums", aliases=[1984, 2.5, "Name"]))
    report = load_library(tmp_path)
    assert report.problems == (
        warning("nums.md", "field aliases", "list item 1984 is a number, not text; kept as '1984'"),
        warning("nums.md", "field aliases", "list item 2.5 is a number, not text; kept as '2.5'"),
    )
    assert report.patterns[0].aliases == ("1984", "2.5", "Name")


def test_aliases_as_a_single_number_are_ignored(tmp_path):
    write_pattern(tmp_path, "one", front_matter("one", aliases=42))
    report = load_library(tmp_path)
    assert report.problems == (warning("one.md", "field aliases", "expected a list of strings, got int; ignored"),)
    assert report.patterns[0].aliases == ()


def test_context_label_not_text(tmp_path):
    labels = {"corporate": ["a", "list"], "tech": "A tech reading."}
    write_pattern(tmp_path, "label", front_matter("label", context_labels=labels))
    report = load_library(tmp_path)
    assert report.problems == (warning("label.md", "field context_labels.corporate", "expected text, got list; ignored"),)
    assert report.patterns[0].context_labels == (("tech", "A tech reading."),)


def test_score_as_non_numeric_string(tmp_path):
    ontology = {"domain": "testing", "commons_assessment": {"resilience": "high", "autonomy": 3}}
    write_pattern(tmp_path, "score", front_matter("score", ontology=ontology))
    report = load_library(tmp_path)
    assert report.problems == (
        warning("score.md", "field ontology.commons_assessment.resilience", "expected a number, got 'high'; ignored"),
    )
    assert report.patterns[0].scores == (("autonomy", 3.0),)


# robustness ----------------------------------------------------------------------------------


def test_one_bad_file_never_stops_the_others(tmp_path):
    for slug in ("alpha", "beta", "gamma"):
        write_pattern(tmp_path, slug, front_matter(slug))
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "binary.md").write_bytes(b"\x00\x01")
    (tmp_path / "plain.md").write_text("no front matter\n")
    write_pattern(tmp_path, "broken", 'title: "unterminated\n')
    write_pattern(tmp_path, "noslug", {"title": "No Slug"})
    (tmp_path / "notes.txt").write_text("not markdown, not counted")
    report = load_library(tmp_path)
    assert report.counts() == {"files": 8, "patterns": 3, "errors": 5, "warnings": 0, "schema_ontology": 3}
    assert [p.slug for p in report.patterns] == ["alpha", "beta", "gamma"]
    assert [p.path for p in report.errors] == ["binary.md", "broken.md", "empty.md", "noslug.md", "plain.md"]


def test_symlink_loops_do_not_hang(tmp_path):
    write_pattern(tmp_path, "real", front_matter("real"))
    os.symlink(tmp_path, tmp_path / "loop", target_is_directory=True)  # a folder that contains itself
    os.symlink("self.md", tmp_path / "self.md")  # a file link pointing at itself
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("report", load_library(tmp_path)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "load_library hung on a symlink loop"
    report = result["report"]
    assert [p.path for p in report.patterns] == ["real.md"]
    assert report.problems == (error("self.md", "file", f"cannot stat file: {os.strerror(errno.ELOOP)}"),)
    assert report.files == 2


def test_broken_symlink(tmp_path):
    os.symlink("missing.md", tmp_path / "dangling.md")
    assert only_problem(tmp_path) == error("dangling.md", "file", "file disappeared or is a broken symlink")


def test_hidden_files_and_folders_are_skipped(tmp_path):
    write_pattern(tmp_path, "seen", front_matter("seen"))
    write_pattern(tmp_path, ".draft", front_matter("draft"))
    write_pattern(tmp_path, ".git/stale", front_matter("stale"))
    report = load_library(tmp_path)
    assert (report.files, [p.slug for p in report.patterns], report.problems) == (1, ["seen"], ())


# field variants from real libraries -----------------------------------------------------------


def test_newest_generation_fields(tmp_path):
    fm = front_matter(
        "full",
        title="Full Pattern",
        id="pat_01full",
        aliases=["Complete", "Whole"],
        summary="A **complete** pattern.",
        context_labels={"corporate": "Business words.", "community": "Neighbourhood words."},
        ontology={
            "domain": "operations",
            "cross_domains": ["finance", "community"],
            "search_hints": {"primary_tension": "Speed vs. Care", "vector_keywords": ["fast", "careful"]},
        },
        lifecycle={"usage_stage": "application", "adoption_stage": "growth", "status": "Stable", "version": "1.0", "confidence": 4},
        license="CC-BY-SA-4.0",
        collection="tests",
    )
    write_pattern(tmp_path, "full", fm, "> A quote.\n\n**Confidence:** high.\n\n" + CANONICAL_BODY)
    report = load_library(tmp_path)
    assert report.problems == ()
    p = report.patterns[0]
    assert (p.slug, p.title, p.id, p.schema, p.path) == ("full", "Full Pattern", "pat_01full", "ontology", "full.md")
    assert p.aliases == ("Complete", "Whole")
    assert p.summary == "A **complete** pattern."
    assert p.epigraph == "> A quote.\n\n**Confidence:** high."
    assert p.context_labels == (("corporate", "Business words."), ("community", "Neighbourhood words."))
    assert p.domains == ("operations", "finance", "community")
    assert (p.tension, p.keywords) == ("Speed vs. Care", ("fast", "careful"))
    assert p.lifecycle == Lifecycle(
        status="stable", confidence=0.8, version="1.0", usage_stage="application", adoption_stage="growth", confidence_stars=4.0
    )
    assert (p.provenance.license, p.provenance.collection) == ("CC-BY-SA-4.0", "tests")
    assert [s.role for s in p.sections] == [
        "context",
        "problem",
        "solution",
        "implementation",
        "consequences",
        "known-uses",
        "cognitive-era",
        "vitality",
    ]
    assert len(p.content_hash) == 64


def test_older_schema_resolves_pat_ids_to_slugs(tmp_path):
    old = {
        "id": "pat_old",
        "slug": "old-pattern",
        "title": "Old Pattern",
        "classification": {"domain": "governance", "commons_domain": ["business", "startup"], "era": ["cognitive"], "status": "Draft"},
        "generalizes_from": ["pat_target"],
        "related": ["pat_missing", "target"],
        "enables": [],
        "confidence_score": 0.7,
        "version": "1.0.0",
        "contributors": [{"name": "Commons OS", "role": "author"}, "Jane Doe"],
        "sources": [{"title": "A Book", "url": "https://example.org"}, "A paper"],
    }
    write_pattern(tmp_path, "old-pattern", old, "# Old Pattern\n\n### 1. Overview\n\ntext\n\n### 3. Key Practices\n\ntext\n")
    write_pattern(
        tmp_path,
        "target",
        {"id": "pat_target", "slug": "target", "title": "Target", "classification": {"domain": "ops", "era": "industrial"}},
        "## Overview\n\ntext\n",
    )
    report = load_library(tmp_path)
    assert report.problems == (
        warning("old-pattern.md", "field relationships.related", "dangling relationship: 'pat_missing' is not in the library"),
    )
    old_p = next(p for p in report.patterns if p.slug == "old-pattern")
    assert old_p.schema == "classification"
    assert old_p.relationships == (
        Relationship("generalizes_from", "target"),
        Relationship("related", "pat_missing"),
        Relationship("related", "target"),
    )
    assert (old_p.legacy_domain, old_p.commons_domains, old_p.domains) == (
        "governance",
        ("business", "startup"),
        ("governance", "business", "startup"),
    )
    assert old_p.lifecycle == Lifecycle(status="draft", confidence=0.7, version="1.0.0")
    assert old_p.provenance.contributors == ("Commons OS", "Jane Doe")
    assert old_p.provenance.sources == ("A Book", "A paper")
    assert [(s.title, s.role) for s in old_p.sections] == [("Overview", "context"), ("Key Practices", "implementation")]


def test_relationship_item_shapes(tmp_path):
    rels = {
        "enables": [{"slug": "b", "weight": 0.8}],
        "requires": [{"id": "pat_c", "weight": "0.6", "description": "needs c first"}],
        "complementary": ["b", "c"],
        "alternatives": "c",
        "tools": [{"weight": 0.1}],
    }
    write_pattern(tmp_path, "a", front_matter("a", relationships=rels))
    write_pattern(tmp_path, "b", front_matter("b"))
    write_pattern(tmp_path, "c", front_matter("c", id="pat_c"))
    report = load_library(tmp_path)
    assert report.problems == (
        warning("a.md", "field relationships.tools", "relationship item {'weight': 0.1} has no slug or id; ignored"),
    )
    assert report.patterns[0].relationships == (
        Relationship("enables", "b", 0.8),
        Relationship("requires", "c", 0.6, "needs c first"),
        Relationship("alternatives", "c"),
        Relationship("complementary", "b"),
        Relationship("complementary", "c"),
    )


def test_self_relationships_are_dropped(tmp_path):
    write_pattern(tmp_path, "loner", front_matter("loner", id="pat_loner", relationships={"enables": ["loner", "pat_loner"]}))
    report = load_library(tmp_path)
    assert (report.problems, report.patterns[0].relationships) == ((), ())


@pytest.mark.parametrize("last_pruned", [dt.date(2026, 1, 5), "2026-01-05", "last spring", None])
def test_last_pruned_date_string_or_null(tmp_path, last_pruned):
    write_pattern(tmp_path, "pruned", front_matter("pruned", graph_garden={"last_pruned": last_pruned}))
    report = load_library(tmp_path)
    assert (report.problems, [p.slug for p in report.patterns]) == ((), ["pruned"])


def test_entities_and_communities_as_dicts_or_plain_strings(tmp_path):
    garden = {
        "entities": ["Time Dollars", {"id": "ledger", "type": "tool", "label": "Ledger", "relevance": "0.8"}, {"label": "Only Label"}],
        "communities": [{"id": "c1", "label": "Mutual aid", "source": "louvain", "confidence": 0.9}, "Loose"],
    }
    write_pattern(tmp_path, "garden", front_matter("garden", graph_garden=garden))
    report = load_library(tmp_path)
    assert report.problems == ()
    p = report.patterns[0]
    assert p.entities == (
        Entity("Time Dollars", label="Time Dollars"),
        Entity("ledger", "tool", "Ledger", 0.8),
        Entity("Only Label", "", "Only Label", None),
    )
    assert p.communities == (Community("c1", "Mutual aid", "louvain", 0.9), Community("Loose", "Loose"))


def test_scores_as_int_float_or_numeric_string(tmp_path):
    assessment = {
        "resilience": 4,
        "autonomy": 3.5,
        "ownership": "3.5",
        "value_creation": "4/5",
        "vitality_reasoning": "Alive.",
        "overall_score": "4.2",
    }
    write_pattern(tmp_path, "scored", front_matter("scored", ontology={"domain": "testing", "commons_assessment": assessment}))
    report = load_library(tmp_path)
    assert report.problems == ()
    p = report.patterns[0]
    assert p.scores == (("resilience", 4.0), ("autonomy", 3.5), ("ownership", 3.5), ("value_creation", 4.0))
    assert p.overall_score == 4.2


@pytest.mark.parametrize("era", [["cognitive", "industrial"], "cognitive"])
def test_era_as_list_or_string(tmp_path, era):
    fm = {"slug": "era", "title": "Era", "classification": {"domain": "ops", "era": era}}
    write_pattern(tmp_path, "era", fm, "### 1. Overview\n\ntext\n")
    report = load_library(tmp_path)
    assert (report.problems, report.patterns[0].legacy_domain) == ((), "ops")


def test_byte_order_mark_is_accepted(tmp_path):
    path = write_pattern(tmp_path, "bom", front_matter("bom"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = load_library(tmp_path)
    assert (report.problems, [p.slug for p in report.patterns]) == ((), ["bom"])


def test_report_to_dict_shape(tmp_path):
    write_pattern(tmp_path, "ok", front_matter("ok"))
    (tmp_path / "empty.md").write_text("")
    assert load_library(tmp_path).to_dict() == {
        "root": str(tmp_path),
        "counts": {"files": 2, "patterns": 1, "errors": 1, "warnings": 0, "schema_ontology": 1},
        "problems": [{"path": "empty.md", "location": "file", "reason": "empty file", "severity": "error"}],
    }
