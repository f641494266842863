"""Chunking with the real tokenizer: ids, roles, repeated titles, and the model's 256-token window."""

from __future__ import annotations

import re

import pytest

from rag.chunking import chunk_library, chunk_pattern, clean_markdown
from rag.config import ChunkerSettings
from rag.load.library import load_library
from rag.records.pattern import Pattern, Section
from support import CANONICAL_BODY, front_matter, write_pattern

WINDOW = 256
SENTENCE = "Stock piles up in the warehouse because every plant pushes product downstream on forecast {n}."
PARAGRAPHS = [" ".join(SENTENCE.format(n=f"{p}.{s}") for s in range(6)) for p in range(8)]  # ~120 tokens each


@pytest.fixture(scope="module")
def pattern(tmp_path_factory) -> Pattern:
    root = tmp_path_factory.mktemp("lib")
    fm = front_matter(
        "pull-flow",
        title="Pull Flow",
        summary="Replenish what was **used**, not what was [forecast](https://example.org).",
        context_labels={"corporate": "Demand-driven supply chain.", "government": "Needs-based provisioning.", "tech": "Backpressure."},
        ontology={"domain": "operations", "search_hints": {"primary_tension": "Forecast push vs. Actual demand pull"}},
    )
    solution = "**Therefore, pull.**\n\n" + "\n\n".join(PARAGRAPHS)
    body = CANONICAL_BODY.replace("Solution text.", solution)
    write_pattern(root, "pull-flow", fm, body)
    report = load_library(root)
    assert report.problems == ()
    return report.patterns[0]


@pytest.fixture(scope="module")
def chunks(pattern, token_counter):
    return chunk_pattern(pattern, token_counter)


def test_chunk_ids_and_roles(chunks):
    solution_parts = [c for c in chunks if c.role == "solution"]
    n = len(solution_parts)
    assert n >= 4  # ~1000 tokens of solution text cannot fit in fewer 256-token windows
    assert [(c.id, c.role, c.section, c.part, c.context) for c in chunks] == [
        ("pull-flow#summary", "summary", "Summary", 1, None),
        ("pull-flow#tension", "tension", "Primary tension and keywords", 1, None),
        ("pull-flow#context-corporate", "context-label", "In corporate terms", 1, "corporate"),
        ("pull-flow#context-government", "context-label", "In government terms", 1, "government"),
        ("pull-flow#context-tech", "context-label", "In tech terms", 1, "tech"),
        ("pull-flow#context", "context", "Context", 1, None),
        ("pull-flow#problem", "problem", "Problem", 1, None),
        *[(f"pull-flow#solution-{i}", "solution", "Solution", i, None) for i in range(1, n + 1)],
        ("pull-flow#implementation", "implementation", "Implementation", 1, None),
        ("pull-flow#consequences", "consequences", "Consequences", 1, None),
        ("pull-flow#known-uses", "known-uses", "Known Uses", 1, None),
        ("pull-flow#cognitive-era", "cognitive-era", "Cognitive Era", 1, None),
        ("pull-flow#vitality", "vitality", "Vitality", 1, None),
    ]
    assert len({c.id for c in chunks}) == len(chunks)
    assert {c.slug for c in chunks} == {"pull-flow"}


def test_summary_tension_and_context_texts(chunks):
    by_id = {c.id: c.text for c in chunks}
    assert by_id["pull-flow#summary"] == "Pull Flow.\nReplenish what was used, not what was forecast."
    assert by_id["pull-flow#tension"] == "Pull Flow: the core tension.\nForecast push vs. Actual demand pull"
    assert by_id["pull-flow#context-corporate"] == "Pull Flow in corporate terms:\nDemand-driven supply chain."
    assert by_id["pull-flow#problem"] == "Pull Flow: Problem.\nProblem text."


def test_every_chunk_fits_the_window(chunks, window_tokens):
    sizes = window_tokens([c.text for c in chunks])
    assert max(sizes) <= WINDOW
    solution_sizes = [size for c, size in zip(chunks, sizes) if c.role == "solution"]
    assert min(solution_sizes[:-1]) > WINDOW // 2  # greedy packing fills the window, not one paragraph per chunk


def test_section_title_is_repeated_on_every_part(chunks):
    parts = [c for c in chunks if c.role == "solution"]
    assert all(c.text.startswith("Pull Flow: Solution.\n") for c in parts)
    assert parts[0].text.startswith("Pull Flow: Solution.\nTherefore, pull.\n\n")


def test_paragraphs_stay_whole_and_in_order(chunks):
    bodies = [c.text.split("\n", 1)[1] for c in chunks if c.role == "solution"]
    pieces = [piece for body in bodies for piece in body.split("\n\n")]
    assert pieces == ["Therefore, pull.", *PARAGRAPHS]


def test_a_paragraph_longer_than_the_window_splits_at_sentences(token_counter, window_tokens):
    sentences = [SENTENCE.format(n=i) for i in range(40)]
    paragraph = " ".join(sentences)
    total = token_counter([paragraph])[0]
    assert total > 2 * WINDOW
    p = Pattern(slug="s", title="T", path="s.md", schema="ontology", sections=(Section("Solution", "solution", 3, paragraph, 1),))
    chunks = chunk_pattern(p, token_counter)
    assert len(chunks) >= -(-total // WINDOW)
    assert max(window_tokens([c.text for c in chunks])) <= WINDOW
    pieces = [piece for c in chunks for piece in c.text.split("\n", 1)[1].split("\n\n")]
    assert pieces == sentences


@pytest.mark.parametrize("word", ["abc-" * 1250, "https://example.org/" + "a1/" * 1660])
def test_pathological_long_word_is_split_and_fits(word, token_counter, window_tokens):
    assert len(word) >= 5000
    assert token_counter([word])[0] > 2 * WINDOW  # punctuation makes it thousands of word pieces
    p = Pattern(slug="w", title="Word", path="w.md", schema="ontology", sections=(Section("Known Uses", "known-uses", 3, word, 1),))
    chunks = chunk_pattern(p, token_counter)
    assert len(chunks) > 2
    assert [c.id for c in chunks] == [f"w#known-uses-{i}" for i in range(1, len(chunks) + 1)]
    assert max(window_tokens([c.text for c in chunks])) <= WINDOW
    assert all(c.text.startswith("Word: Known Uses.\n") for c in chunks)
    assert "".join(c.text.split("\n", 1)[1].replace("\n\n", "") for c in chunks) == word


def test_split_section_ids_never_collide_with_a_numbered_section(token_counter):
    long_text = "\n\n".join(PARAGRAPHS[:3])  # ~360 tokens: two parts
    sections = (
        Section("Step", "implementation", 3, long_text, 1),
        Section("Step 2", "implementation", 3, "Short.", 2),
        Section("Step", "implementation", 3, "Again.", 3),
    )
    p = Pattern(slug="s", title="T", path="s.md", schema="ontology", sections=sections)
    ids = [c.id for c in chunk_pattern(p, token_counter)]
    assert ids == ["s#step-1", "s#step-2", "s#step-2_2", "s#step_2"]


def test_smaller_window_setting_is_respected(pattern, token_counter, window_tokens):
    chunks = chunk_pattern(pattern, token_counter, ChunkerSettings(max_tokens=64))
    assert max(window_tokens([c.text for c in chunks])) <= 64
    assert len({c.id for c in chunks}) == len(chunks)


def test_empty_sections_make_no_chunks(token_counter):
    sections = (
        Section("Context", "context", 3, "", 1),
        Section("Problem", "problem", 3, "**  **", 2),
        Section("Solution", "solution", 3, "Do.", 3),
    )
    p = Pattern(slug="e", title="E", path="e.md", schema="ontology", sections=sections)
    assert [c.id for c in chunk_pattern(p, token_counter)] == ["e#solution"]


def test_chunk_library_uses_the_model_counter_by_default(pattern, chunks):
    assert chunk_library([pattern]) == chunks


def test_clean_markdown():
    text = "> **Bold** and *em* and [a link](https://x.org).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> [!NOTE] A callout."
    assert clean_markdown(text) == "Bold and em and a link.\n\n| a | b |\n| 1 | 2 |\n\nA callout."
    assert re.search(r"[*\[\]]", clean_markdown("**x** [y](z)")) is None


def test_a_body_without_headings_is_chunked_whole(tmp_path, token_counter):
    write_pattern(tmp_path, "flat", front_matter("flat", title="Flat"), "Some **plain** text.\n\nA second paragraph.\n")
    report = load_library(tmp_path)
    chunks = chunk_pattern(report.patterns[0], token_counter)
    assert [(c.id, c.role, c.section, c.text) for c in chunks] == [
        ("flat#body", "other", "Body", "Flat: Body.\nSome plain text.\n\nA second paragraph."),
    ]
