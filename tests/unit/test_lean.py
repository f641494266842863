"""Token-lean MCP answers on the fake encoder: compact JSON, chosen sections, packs filled by value, a short tool list."""

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
from rag.serve.mcp import build_mcp
from rag.serve.state import State

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
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return model_token_counter()([json.dumps(data, separators=(",", ":"), ensure_ascii=False)])[0]


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


def test_search_answer_is_ranked_hits_with_one_cited_snippet_each(fake_retriever):
    results = fake_retriever.search(SHELVES, k=5)
    data, text = lean.search_answer(results, analyze(SHELVES))
    assert [h["slug"] for h in data["hits"]] == results.slugs
    assert text == "5 patterns, best first."
    for hit, full in zip(data["hits"], results.hits):
        assert set(hit) <= {"slug", "title", "evidence", "summary", "context_label", "name_match", "duplicates", "relevance", "pinned"}
        if full.evidence:
            (ev,) = hit["evidence"]
            assert ev["cite"] == full.evidence[0].chunk_id and len(ev["snippet"]) <= lean.SEARCH_SNIPPET_CHARS
        else:
            assert hit["summary"]
    assert "query" not in data and "filters" not in data and "k" not in data


def test_get_pattern_returns_the_asked_sections_by_role_title_or_key(fake_index):
    pattern = fake_index.patterns[fake_index.slug_row["pull-based-replenishment"]]
    data, text = lean.pattern_answer("v1", pattern, None, None, ["solution", "Known Uses"])
    assert [s["cite"] for s in data["sections"]] == ["pull-based-replenishment#solution", "pull-based-replenishment#known-uses"]
    assert "known-uses" in data["section_keys"] and "context_labels" not in data and data["contexts"]
    assert text == f"{pattern.title}: 2 of {len(pattern.sections)} sections."
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


def test_the_mcp_tool_list_and_answers_are_short(fake_state):
    listed, search, pattern, pack = call(
        fake_state,
        ("search_patterns", {"query": SHELVES, "k": 5}),
        ("get_pattern", {"slug": "pull-based-replenishment", "sections": ["solution"]}),
        ("context_pack", {"query": SHELVES, "budget_tokens": 800}),
    )
    assert tokens(listed) < 2000
    assert all(t.output_schema is None and "title" not in json.dumps(t.input_schema) for t in listed.tools)
    assert tokens(search) < 700 and len(search.content) == 1
    assert [s["cite"] for s in pattern.structured_content["sections"]] == ["pull-based-replenishment#solution"]
    assert tokens(pack) <= 800 + 160
