"""Snippets: centred on the passage that matched, with the matched words' offsets (stemmed matching)."""

from __future__ import annotations

from rag.index.lexical import analyze, analyze_spans
from rag.records.chunk import Chunk
from rag.search.evidence import window
from rag.serve.wire import SearchResponse

FILLER = " ".join(f"Filler sentence number {n} talks about nothing in particular." for n in range(12))
TAIL = "Nobody ordered the stock that fills our shelves."


def marked(text: str, spans) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_analyze_spans_are_the_analyzer_tokens_with_their_offsets():
    text = "Ordering STOCK (nobody) ordered; the shelves-full"
    spans = analyze_spans(text)
    assert [stem for _, _, stem in spans] == analyze(text)
    assert [text[s:e] for s, e, _ in spans] == ["Ordering", "STOCK", "nobody", "ordered", "shelves", "full"]


def test_the_window_holds_the_match_at_the_end_of_a_long_chunk_not_its_first_characters():
    text = f"{FILLER} {TAIL} {FILLER}"
    out, spans = window(text, 160, analyze("ordering stock"))
    assert len(out) <= 160
    assert out.startswith("...") and out.endswith("...")
    assert "Nobody ordered the stock" in out
    assert marked(out, spans) == ["ordered", "stock"]


def test_the_window_starts_at_the_sentence_of_the_first_match_when_it_fits():
    out, _ = window(f"{FILLER} {TAIL} {FILLER}", 200, analyze("shelves"))
    assert out.startswith(f"...{TAIL}")


def test_the_run_with_most_distinct_terms_wins_over_repeats_of_one():
    text = f"stock stock stock stock. {FILLER} Our shelves hold stock. {FILLER}"
    out, spans = window(text, 120, analyze("stock shelves"))
    assert marked(out, spans) == ["shelves", "stock"]


def test_without_a_match_the_snippet_is_the_beginning_cut_at_a_word():
    out, spans = window(FILLER, 100)
    assert spans == ()
    assert FILLER.startswith(out[:-3]) and out.endswith("...") and len(out) <= 100
    assert FILLER[len(out) - 3] == " "  # cut before a space, not inside a word


def test_a_short_text_comes_whole_with_every_match_and_the_chunk_header_is_dropped():
    chunk = Chunk("p#problem", "p", "problem", "Problem", "Pull-Based Replenishment: Problem.\nShelves full of stock nobody ordered.")
    out, spans = window(chunk.body, 320, analyze("order"))
    assert out == "Shelves full of stock nobody ordered."
    assert marked(out, spans) == ["ordered"]


def test_search_evidence_carries_highlights_into_the_wire(fake_retriever):
    results = fake_retriever.search("stock nobody ordered", k=3)
    evidence = [ev for hit in results.hits for ev in hit.evidence]
    assert any(ev.highlights for ev in evidence)
    terms = set(analyze("stock nobody ordered"))
    for ev in evidence:
        assert len(ev.snippet) <= fake_retriever.settings.snippet_chars
        for s, e in ev.highlights:
            assert analyze(ev.snippet[s:e]) and set(analyze(ev.snippet[s:e])) <= terms
    wire = SearchResponse.of(results).model_dump()
    assert [list(map(tuple, ev["highlights"])) for h in wire["hits"] for ev in h["evidence"]] == [list(ev.highlights) for ev in evidence]


def test_the_prefix_prefilter_finds_exactly_the_matches_of_full_stemming():
    """Snippets stem only words starting as some query stem does (`stem_prefixes`); the matches must be the same."""
    from pathlib import Path

    from rag.index.lexical import stem_prefixes
    from rag.load.library import load_library

    library = load_library(Path(__file__).resolve().parents[2] / "patterns").patterns
    texts = [s.text for p in library for s in p.sections]
    words = sorted({w for text in texts for w in analyze(text, stem=False)} | {"dying", "lying", "vying", "skies", "ties"})
    for word, stem in zip(words, analyze(" ".join(words))):
        assert any(word.startswith(prefix) for prefix in stem_prefixes([stem])), (word, stem)
    for query in ("ordering stock replenishment", "families gathering quietly", "happily dying bias", "Ties LYING_low x"):
        wanted = set(analyze(query))
        for text in texts + ["Dying, lying and vying ties; foo_ordering café-families 3d"]:
            full = [m for m in analyze_spans(text) if m[2] in wanted]
            assert [m for m in analyze_spans(text, stem_prefixes(wanted)) if m[2] in wanted] == full
    assert analyze_spans("Anything at all", frozenset()) == []
