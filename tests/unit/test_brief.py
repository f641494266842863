"""A pattern's brief: its summary, or for a file without one the first sentences of its first section."""

from __future__ import annotations

from rag.records.pattern import BRIEF_CHARS, Pattern, Section


def _pattern(summary: str = "", sections: tuple[Section, ...] = ()) -> Pattern:
    return Pattern(slug="p", title="P", path="p.md", schema="classification", summary=summary, sections=sections)


def test_the_written_summary_wins():
    assert _pattern("Keeps bees.", (Section("Overview", "context", 3, "Other text.", 1),)).brief == "Keeps bees."


def test_an_older_file_gets_the_first_sentences_of_its_first_section_without_markup():
    text = "The **Andon** cord stops the [line](https://x.example) at once. Workers pull it. " + "More words here. " * 40
    brief = _pattern("", (Section("Empty", "other", 3, "  ", 1), Section("Overview", "context", 3, text, 2))).brief
    assert brief.startswith("The Andon cord stops the line at once. Workers pull it.")
    assert "**" not in brief and "](" not in brief
    assert len(brief) <= BRIEF_CHARS and brief.endswith(".")


def test_one_long_sentence_is_cut_at_a_word():
    brief = _pattern("", (Section("Overview", "context", 3, "word " * 200, 1),)).brief
    assert len(brief) <= BRIEF_CHARS + 4 and brief.endswith(" ...")


def test_no_text_at_all_gives_an_empty_brief():
    assert _pattern().brief == ""
