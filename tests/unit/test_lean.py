"""MCP answers on the fake encoder: the answer as text and as compact structured content, chosen sections, packs filled
by value above their relevance floor, a short tool list, strict arguments refused in sentences, pages with next_offset."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from mcp import Client

from rag.chunking import model_token_counter
from rag.index.lexical import analyze
from rag.search.context import build_context, passage_json
from rag.search.graph import Graph
from rag.serve import lean
from rag.serve.mcp import PACK_FRAMING_TOKENS, build_mcp
from rag.serve.state import State
from rag.serve.wire import ContextResponse

SHELVES = "our shelves are full of stock nobody ordered"


@pytest.fixture(scope="module")
def fake_state(fake_index, fake_retriever):
    return State(fake_index, fake_retriever, Graph(fake_index.patterns), time.time(), tuple(sorted(fake_index.slug_row)))


def call(state, *calls):
    async def main():
        async with Client(build_mcp(lambda: state)) as client:
            out = [await client.list_tools()]
            for name, args in calls:
                out.append(await client.call_tool(name, args))
            return out

    return anyio.run(main)


def tokens(result) -> int:
    """Of the whole result as the client receives it."""
    return json_tokens(result.model_dump(mode="json", by_alias=True, exclude_none=True))


def text_tokens(result) -> int:
    """Of its text content, the form a model reads."""
    return json_tokens(result.model_dump(mode="json", by_alias=True, exclude_none=True)["content"])


def structured_tokens(result) -> int:
    """Of its structured content, the form a program reads."""
    return json_tokens(result.structured_content)


def json_tokens(value) -> int:
    return model_token_counter()([json.dumps(value, separators=(",", ":"), ensure_ascii=False)])[0]


def test_compact_drops_nulls_empties_and_false_and_rounds_floats():
    assert lean.compact(
        {"a": None, "b": "", "c": [], "d": {}, "e": False, "f": 0, "g": [{"h": None}, 1.23456], "i": (1, 2), "j": True}
    ) == {"f": 0, "g": [1.23], "i": [1, 2], "j": True}


def test_tool_schema_drops_titles_and_nullable_wrappers():
    schema = {
        "title": "fArguments",
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": {"title": "Q", "type": "string"},
            "domain": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "description": "d", "title": "Domain"},
            "k": {"default": 5, "type": "integer", "title": "K"},
        },
    }
    assert lean.tool_schema(schema) == {
        "type": "object",
        "required": ["q"],
        "properties": {
            "q": {"type": "string"},
            "domain": {"description": "d", "type": "string"},
            "k": {"default": 5, "type": "integer"},
        },
    }


def test_search_answer_is_ranked_hits_with_a_summary_and_one_cited_snippet_each(fake_retriever):
    results = fake_retriever.search(SHELVES, k=5)
    data, text = lean.search_answer(results, analyze(SHELVES))
    assert [h["slug"] for h in data["hits"]] == results.slugs
    assert data["next_offset"] == 5 and "query" not in data and "filters" not in data and "k" not in data
    lines = text.splitlines()
    assert (
        lines[0] == f"5 patterns, best first; relevance 0-1 (under {results.relevance_threshold:.2f}: no good match). Next page: offset=5."
    )
    assert len(lines) == 6  # one line per hit
    for rank, (hit, full, line) in enumerate(zip(data["hits"], results.hits, lines[1:]), start=1):
        assert set(hit) <= {
            "slug",
            "title",
            "summary",
            "cite",
            "snippet",
            "context_label",
            "name_match",
            "duplicates",
            "relevance",
            "pinned",
        }
        assert line.startswith(f'{rank}. {full.slug} "{full.title}" {full.relevance:.2f}: ')
        assert hit["cite"] in {e.chunk_id for e in full.evidence} and len(hit["snippet"]) <= lean.SEARCH_SNIPPET_CHARS
        assert line.endswith(f"[{hit['cite']}]") and " ".join(hit["snippet"].split()) in line
        if not hit["cite"].endswith("#summary"):  # a summary passage stands for the summary
            assert hit["summary"] == lean.one_line(full.summary) and hit["summary"] in line
            assert len(hit["summary"]) <= lean.SUMMARY_CHARS and "\n" not in hit["summary"]
    # the tension chunk (search keywords) is never the shown passage when another one matched
    assert not any(h["cite"].endswith("#tension") for h in data["hits"])


def test_one_line_is_the_first_sentence_cut_at_a_word():
    assert lean.one_line("Short one.  Second sentence.") == "Short one."
    cut = lean.one_line("word " * 40, 30)
    assert cut == "word word word word word..." and len(cut) <= 30


def test_a_search_with_no_good_match_and_a_later_page_say_so(fake_retriever):
    nothing = fake_retriever.search("xyzzy plugh", k=2)
    _, text = lean.search_answer(nothing, analyze("xyzzy plugh"))
    threshold = f"{nothing.relevance_threshold:.2f}"
    assert text.splitlines()[0].startswith(
        f"No good match in this library (best relevance below {threshold}); 2 patterns, the closest first."
    )
    page = fake_retriever.search(SHELVES, k=2, offset=2)
    data, text = lean.search_answer(page, analyze(SHELVES))
    assert text.splitlines()[0].startswith("Patterns 3-4, best first;") and text.splitlines()[0].endswith("Next page: offset=4.")
    assert text.splitlines()[1].startswith(f"3. {page.hits[0].slug} ") and data["next_offset"] == 4


def test_get_pattern_returns_the_asked_sections_by_role_title_or_key(fake_index):
    pattern = fake_index.patterns[fake_index.slug_row["pull-based-replenishment"]]
    data, text = lean.pattern_answer("v1", pattern, None, None, ["solution", "Known Uses"])
    assert [s["cite"] for s in data["sections"]] == ["pull-based-replenishment#solution", "pull-based-replenishment#known-uses"]
    assert "known-uses" in data["section_keys"] and "context_labels" not in data and data["contexts"]
    assert text.startswith(f'pull-based-replenishment "{pattern.title}" (also: ')
    assert f"2 of {len(pattern.sections)} sections; keys: " in text
    assert "## Solution [pull-based-replenishment#solution]\n" + pattern.section("solution").text.strip() in text
    assert "## Known Uses [pull-based-replenishment#known-uses]" in text and "## Problem" not in text
    none, _ = lean.pattern_answer("v1", pattern, "activist", pattern.context_label("activist"), [])
    assert "sections" not in none and none["context_label"] == pattern.context_label("activist")
    assert all(isinstance(targets, list) for targets in none["relationships"].values())
    whole, _ = lean.pattern_answer("v1", pattern, None, None, None)
    assert len(whole["sections"]) == len(pattern.sections) and "section_keys" not in whole


@pytest.mark.parametrize("budget", [600, 700, 800, 2000])
def test_packs_hold_the_solution_and_stay_in_budget_as_sent(fake_retriever, budget):
    pack = build_context(fake_retriever, SHELVES, budget_tokens=budget)
    count = model_token_counter()
    assert pack.tokens == sum(count([passage_json(p.cite, p.text)])[0] + 1 for p in pack.passages) <= budget
    top = pack.patterns[0].slug
    assert f"{top}#solution" in [p.cite for p in pack.passages]
    data, _ = lean.pack_answer(pack)
    assert [set(p) for p in data["passages"]] == [{"cite", "text"}] * len(pack.passages)


def test_a_pack_takes_passages_only_from_hits_that_clear_its_floor(fake_retriever):
    """A budget is never filled with unrelated text: hits under the calibration's no-good-match threshold give nothing."""
    results = fake_retriever.search("burnout", k=5)
    floor = results.relevance_threshold
    above = [h.slug for h in results.hits if h.relevance >= floor]
    below = [h.slug for h in results.hits if h.relevance < floor]
    assert above and below  # the fake encoder's answer has both
    pack = build_context(fake_retriever, "burnout", budget_tokens=32000)
    assert (pack.relevance_floor, pack.below_floor) == (floor, tuple(below))
    assert [p.slug for p in pack.patterns] == above and {p.slug for p in pack.passages} == set(above)
    assert f"(Only patterns with relevance at least {floor:.2f}; left out: {', '.join(below)}.)" in pack.markdown
    http = ContextResponse.of(pack).model_dump()
    assert (http["relevance_floor"], http["below_floor"]) == (floor, below)
    nothing = build_context(fake_retriever, "xyzzy plugh")
    assert (nothing.passages, nothing.tokens, len(nothing.below_floor)) == ((), 0, 5)


def test_the_mcp_tool_list_and_each_form_of_an_answer_are_short(fake_state):
    listed, search, pattern, pack = call(
        fake_state,
        ("search_patterns", {"query": SHELVES, "k": 5}),
        ("get_pattern", {"slug": "pull-based-replenishment", "sections": ["solution"]}),
        ("context_pack", {"query": SHELVES, "budget_tokens": 800}),
    )
    assert tokens(listed) <= 1500
    assert all(t.output_schema is None and "title" not in json.dumps(t.input_schema) for t in listed.tools)
    assert all(t.input_schema["additionalProperties"] is False and "\n" not in t.description for t in listed.tools)
    assert len(search.content) == 1 and text_tokens(search) <= 700 and structured_tokens(search) <= 700
    assert [s["cite"] for s in pattern.structured_content["sections"]] == ["pull-based-replenishment#solution"]
    assert text_tokens(pack) <= 800 + PACK_FRAMING_TOKENS and structured_tokens(pack) <= 800 + PACK_FRAMING_TOKENS


def test_every_tool_answers_in_its_text_too(fake_state, fake_retriever):
    """Hosts that pass only the text to the model still see the whole answer (issue 28)."""
    _, search, pattern, related, facets, pack, empty = call(
        fake_state,
        ("search_patterns", {"query": SHELVES, "k": 3}),
        ("get_pattern", {"slug": "pull-based-replenishment", "sections": ["problem"]}),
        ("related_patterns", {"slug": "pull-based-replenishment", "similar": 2}),
        ("list_facets", {}),
        ("context_pack", {"query": SHELVES, "budget_tokens": 600}),
        ("context_pack", {"query": "xyzzy plugh"}),
    )
    lines = search.content[0].text.splitlines()
    for rank, hit in enumerate(search.structured_content["hits"], start=1):
        assert lines[rank].startswith(f'{rank}. {hit["slug"]} "{hit["title"]}" {hit["relevance"]:.2f}: ')
        assert lines[rank].endswith(f"[{hit['cite']}]")
    problem = fake_state.index.patterns[fake_state.index.slug_row["pull-based-replenishment"]].section("problem").text.strip()
    assert f"## Problem [pull-based-replenishment#problem]\n{problem}" in pattern.content[0].text

    text = related.content[0].text.splitlines()
    targets = {r["slug"] for r in related.structured_content["related"]}
    assert text[0] == f"pull-based-replenishment: {len(targets)} related patterns, 2 similar by content."
    assert sorted(line.split()[1] for line in text if line.startswith("- ")) == sorted(targets)  # one line per target
    small_batch = next(line for line in text if line.startswith("- small-batch-delivery "))
    assert small_batch == '- small-batch-delivery "Small-Batch Delivery": enables, complementary'
    assert text[-1].startswith("Similar: ") and all(s["slug"] in text[-1] for s in related.structured_content["similar"])

    assert facets.content[0].text.splitlines()[1].startswith("domains: operations 12, ")
    assert "statuses: stable 25" in facets.content[0].text

    passages = pack.structured_content["passages"]
    hits = fake_retriever.search(SHELVES, k=5)
    floor, below = hits.relevance_threshold, sum(h.relevance < hits.relevance_threshold for h in hits.hits)
    assert pack.structured_content["relevance_floor"] == round(floor, 2) and 0 < below < 5
    assert (
        pack.content[0]
        .text.splitlines()[0]
        .endswith(f"tokens; only patterns with relevance at least {floor:.2f} ({below} below it left out).")
    )
    for p in passages:
        assert f"[{p['cite']}]\n{p['text'].strip()}" in pack.content[0].text
    assert (
        empty.content[0].text
        == f"No passages: only patterns with relevance at least {floor:.2f}, and no pattern reached it (5 below it left out)."
    )
    assert "passages" not in empty.structured_content and empty.structured_content["tokens"] == 0


SIGNATURE = (
    "search_patterns takes: query (string, required), k (integer 1-100, default 5), offset (integer 0-99, default 0), "
    "domain (string), context (string), status (string), min_confidence (number 0-1), group_duplicates (boolean, default false), "
    "reader (string)."
)


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("search_patterns", {"query": SHELVES, "filters": {"domain": "astrology"}}, f"unknown argument 'filters'. {SIGNATURE}"),
        ("search_patterns", {"query": SHELVES, "k": "5"}, f"k must be an integer, got the string '5'. {SIGNATURE}"),
        ("search_patterns", {"query": SHELVES, "k": True}, f"k must be an integer, got the boolean true. {SIGNATURE}"),
        ("search_patterns", {"query": SHELVES, "k": 1000}, "k must be between 1 and 100, got 1000."),
        ("search_patterns", {"query": SHELVES, "min_confidence": 2}, "min_confidence must be between 0 and 1, got 2."),
        ("search_patterns", {"query": SHELVES, "offset": -1}, "offset must be between 0 and 99, got -1."),
        ("search_patterns", {"query": SHELVES, "k": 99, "offset": 5}, "k: k must be between 1 and 95 with offset 5"),
        ("search_patterns", {"query": SHELVES, "domain": "astrology"}, "domain: unknown domain 'astrology'; valid values: community, "),
        ("search_patterns", {"query": "x" * 2001}, "query must be at most 2000 characters long, got 2001."),
        ("context_pack", {"query": SHELVES, "budget_tokens": 10}, "budget_tokens must be between 50 and 32000, got 10."),
        ("context_pack", {"query": SHELVES, "domain": "astrology"}, "domain: unknown domain 'astrology'; valid values: community, "),
        ("get_pattern", {}, "slug is required. get_pattern takes: slug (string, required), sections (array), context (string)."),
        ("get_pattern", {"slug": "open-book-management", "sections": "solution"}, "sections must be a list of strings, got the string"),
        (
            "related_patterns",
            {"slug": "open-book-management", "similar": 1.5},
            "similar must be an integer, got 1.5. related_patterns takes:",
        ),
        ("list_facets", {"verbose": True}, "unknown argument 'verbose'. list_facets takes: no arguments."),
    ],
)
def test_arguments_are_strict_and_errors_read_as_sentences(fake_state, tool, args, message):
    _, result = call(fake_state, (tool, args))
    assert result.is_error
    assert result.content[0].text.startswith(f"Error executing tool {tool}: {message}")
    assert "pydantic" not in result.content[0].text and "type=" not in result.content[0].text


def test_sections_sent_as_a_json_string_still_work(fake_state):
    _, result = call(fake_state, ("get_pattern", {"slug": "pull-based-replenishment", "sections": '["solution"]'}))
    assert [s["cite"] for s in result.structured_content["sections"]] == ["pull-based-replenishment#solution"]


def test_search_pages_on_with_offset_and_next_offset(fake_state, fake_retriever):
    _, first, second, last = call(
        fake_state,
        ("search_patterns", {"query": SHELVES, "k": 2}),
        ("search_patterns", {"query": SHELVES, "k": 2, "offset": 2}),
        ("search_patterns", {"query": SHELVES, "k": 1, "offset": 99}),
    )
    slugs = fake_retriever.search(SHELVES, k=4).slugs
    assert [h["slug"] for h in first.structured_content["hits"]] == slugs[:2] and first.structured_content["next_offset"] == 2
    assert [h["slug"] for h in second.structured_content["hits"]] == slugs[2:4] and second.structured_content["next_offset"] == 4
    assert second.content[0].text.splitlines()[1].startswith(f"3. {slugs[2]} ")
    assert "next_offset" not in last.structured_content and "Next page" not in last.content[0].text
