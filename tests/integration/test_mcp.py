"""MCP tools through the SDK's own client: over stdio (`rag mcp` as a subprocess) and over streamable
HTTP mounted on the API, served by a real uvicorn on 127.0.0.1 (which also answers REST over HTTP).

Token budgets are measured with the model's own tokenizer over exactly what the client receives: the
compact JSON of the list_tools result and of each call_tool result (content and structured content)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from mcp import Client, StdioServerParameters

from rag.config import Settings
from rag.serve.http import create_app
from rag.serve.mcp import PACK_FRAMING_TOKENS, build_mcp
from rag.serve.state import State
from support import REPO, SHELVES

TOOLS = {"search_patterns", "get_pattern", "related_patterns", "list_facets", "context_pack"}
TOOL_LIST_BUDGET = 1500  # issue 28: each on bmn, through the SDK's client
SEARCH_K5_BUDGET = 700  # in its text, and again in its structured content
PACK_800_BUDGET = 900  # a pack of 800 tokens, in each form, with its Solution passage


def received_tokens(result, token_counter, part: str | None = None) -> int:
    """Tokens of a result as the client got it: its JSON, compact, as the SDK sends it; `part` "content" (the text
    a model reads) or "structuredContent" (what a program reads) counts that form alone."""
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return token_counter([json.dumps(data if part is None else data[part], separators=(",", ":"), ensure_ascii=False)])[0]


def nulls_or_empties(value) -> list:
    if isinstance(value, dict):
        return [k for k, v in value.items() if v in (None, "", [], {}, False)] + [x for v in value.values() for x in nulls_or_empties(v)]
    if isinstance(value, list):
        return [x for v in value for x in nulls_or_empties(v)]
    return []


@contextlib.contextmanager
def serving(app, timeout: float = 30.0):
    """Run `app` with uvicorn on a free loopback port in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@pytest.fixture(scope="module")
def server_url(patterns_index_dir, embedder):
    with serving(create_app(Settings(index_dir=patterns_index_dir), embedder=embedder)) as url:
        yield url


async def exercise(client: Client, version: str) -> dict:
    """The same calls over any transport; returns the structured results by tool."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert all(t.annotations.read_only_hint for t in tools.values())
    assert tools["search_patterns"].input_schema["required"] == ["query"]
    assert tools["search_patterns"].input_schema["properties"]["k"]["maximum"] == 100
    assert tools["search_patterns"].output_schema is None  # schemas of the answers cost ~6,000 tokens; descriptions name the shapes
    assert "title" not in tools["search_patterns"].input_schema["properties"]["domain"]

    out = {}
    search = await client.call_tool("search_patterns", {"query": SHELVES, "k": 3})
    assert not search.is_error
    out["search"] = search.structured_content
    assert "pull-based-replenishment" in [h["slug"] for h in out["search"]["hits"]]
    assert out["search"]["index_version"] == version

    assert all(h["cite"].startswith(h["slug"] + "#") and h["summary"] for h in out["search"]["hits"])
    assert not nulls_or_empties(out["search"])
    lines = search.content[0].text.splitlines()
    assert len(search.content) == 1 and lines[0].startswith("3 patterns, best first; relevance 0-1") and len(lines) == 4
    assert all(
        line.startswith(f"{n}. {h['slug']} ") and h["cite"] in line for n, (h, line) in enumerate(zip(out["search"]["hits"], lines[1:]), 1)
    )

    pattern = await client.call_tool(
        "get_pattern", {"slug": "open-book-management", "context": "activist", "sections": ["solution", "Problem"]}
    )
    assert pattern.structured_content["title"] == "Open Book Management"
    assert pattern.structured_content["context_label"].startswith("Keeping a collective's books open")
    assert [s["cite"] for s in pattern.structured_content["sections"]] == ["open-book-management#problem", "open-book-management#solution"]
    assert "open-book-management#known-uses" in ["open-book-management#" + k for k in pattern.structured_content["section_keys"]]

    related = await client.call_tool("related_patterns", {"slug": "pull-based-replenishment", "similar": 3})
    out["related"] = related.structured_content
    assert ("small-batch-delivery", "enables") in {(r["slug"], r["relation"]) for r in out["related"]["related"]}
    assert len(out["related"]["similar"]) == 3

    facets = await client.call_tool("list_facets", {})
    assert facets.structured_content["statuses"] == {"stable": 25}

    pack = await client.call_tool("context_pack", {"query": SHELVES, "budget_tokens": 400})
    out["context"] = pack.structured_content
    assert out["context"]["tokens"] <= 400
    assert out["context"]["passages"][0]["cite"].startswith("pull-based-replenishment#")
    assert "pull-based-replenishment#solution" in [p["cite"] for p in out["context"]["passages"]]
    assert 0 < out["context"]["relevance_floor"] < 0.5 and "only patterns with relevance at least" in pack.content[0].text
    assert all(f"[{p['cite']}]" in pack.content[0].text for p in out["context"]["passages"])

    bad_filter = await client.call_tool("search_patterns", {"query": SHELVES, "domain": "astrology"})
    assert bad_filter.is_error and "domain: unknown domain 'astrology'; valid values: community" in bad_filter.content[0].text
    path_slug = await client.call_tool("get_pattern", {"slug": "../../etc/passwd"})
    assert path_slug.is_error and "slug: invalid slug" in path_slug.content[0].text
    unknown = await client.call_tool("related_patterns", {"slug": "no-such-pattern"})
    assert unknown.is_error and "no pattern with slug 'no-such-pattern'" in unknown.content[0].text
    empty = await client.call_tool("search_patterns", {"query": ""})
    assert empty.is_error and "query: query is empty" in empty.content[0].text
    big_k = await client.call_tool("search_patterns", {"query": SHELVES, "k": 1000})
    assert big_k.is_error and big_k.content[0].text == "Error executing tool search_patterns: k must be between 1 and 100, got 1000."
    text_k = await client.call_tool("search_patterns", {"query": SHELVES, "k": "5"})
    assert (
        text_k.is_error
        and "k must be an integer, got the string '5'. search_patterns takes: query (string, required)" in text_k.content[0].text
    )
    nested = await client.call_tool("search_patterns", {"query": "member owned", "filters": {"domain": "astrology"}})
    assert nested.is_error and "unknown argument 'filters'. search_patterns takes: " in nested.content[0].text
    return out


def test_mcp_over_streamable_http_mounted_on_the_api(server_url, search_index):
    async def main():
        async with Client(f"{server_url}/mcp") as client:
            return await exercise(client, search_index.version)

    out = anyio.run(main)
    assert out["search"]["hits"][0]["snippet"]


def test_rest_over_real_http(server_url, search_index):
    with httpx.Client(base_url=server_url, timeout=30) as http:
        body = http.post("/search", json={"query": "Open Book Management", "k": 3}).json()
        assert body["hits"][0]["slug"] == "open-book-management"
        assert body["index_version"] == search_index.version
        bad = http.post("/search", json={"query": "stock", "k": 0})
        assert (bad.status_code, bad.json()["field"]) == (422, "k")
        # The MCP endpoint refuses a foreign Host header (DNS rebinding) on a loopback server.
        rebinding = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Host": "evil.example", "accept": "application/json, text/event-stream"},
        )
        assert rebinding.status_code in (400, 403, 421)


def test_mcp_over_stdio_with_rag_mcp(patterns_index_dir, search_index):
    rag = Path(sys.executable).with_name("rag")
    params = StdioServerParameters(
        command=str(rag),
        args=["mcp", "--index-dir", str(patterns_index_dir)],
        # PYTHONPATH: this checkout's code, whichever checkout the venv's editable install points to
        env={
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
        },
    )

    async def main():
        async with Client(params, read_timeout_seconds=120) as client:  # the subprocess loads the model first
            return await exercise(client, search_index.version)

    out = anyio.run(main)
    assert "markdown" not in out["context"]


def test_mcp_answers_stay_within_their_token_budgets(server_url, token_counter):
    """Over streamable HTTP, as an agent's client receives them (figures for patterns/ printed with -s)."""

    async def main():
        async with Client(f"{server_url}/mcp") as client:
            figures = {"tool list": received_tokens(await client.list_tools(), token_counter)}
            search = await client.call_tool("search_patterns", {"query": SHELVES, "k": 5})
            figures["search k=5 text"] = received_tokens(search, token_counter, "content")
            figures["search k=5 structured"] = received_tokens(search, token_counter, "structuredContent")
            assert len(search.structured_content["hits"]) == 5
            assert all(h["cite"] and h["snippet"] for h in search.structured_content["hits"])
            whole = await client.call_tool("get_pattern", {"slug": "pull-based-replenishment"})
            chosen = await client.call_tool("get_pattern", {"slug": "pull-based-replenishment", "sections": ["solution"]})
            figures["get_pattern"], figures["get_pattern solution"] = (
                received_tokens(whole, token_counter),
                received_tokens(chosen, token_counter),
            )
            assert [s["cite"] for s in chosen.structured_content["sections"]] == ["pull-based-replenishment#solution"]
            for budget in (600, 700, 800, 2000):
                pack = await client.call_tool("context_pack", {"query": SHELVES, "budget_tokens": budget})
                passages = pack.structured_content["passages"]
                sent = max(received_tokens(pack, token_counter, "content"), received_tokens(pack, token_counter, "structuredContent"))
                figures[f"pack {budget}"] = sent
                assert pack.structured_content["tokens"] <= budget
                assert sent <= budget + PACK_FRAMING_TOKENS
                assert "pull-based-replenishment#solution" in [p["cite"] for p in passages]
                assert all("#" in p["cite"] and set(p) == {"cite", "text"} for p in passages)
            return figures

    figures = anyio.run(main)
    print(figures)
    assert figures["tool list"] <= TOOL_LIST_BUDGET
    assert figures["search k=5 text"] <= SEARCH_K5_BUDGET and figures["search k=5 structured"] <= SEARCH_K5_BUDGET
    assert figures["get_pattern solution"] < figures["get_pattern"] / 2


def test_mcp_budgets_on_bmn_through_the_sdk_client(bmn_index_dir, embedder, token_counter):
    """Issue 28's budgets, over the bmn dev queries (figures printed with -s; at the change: tool list 1,483; search
    k=5 text at most 515, structured at most 678; pack 800 at most 824 text and 854 structured)."""
    state = State.load(bmn_index_dir, embedder)
    queries = [json.loads(line)["query"] for line in (REPO / "eval" / "dev" / "bmn.jsonl").read_text(encoding="utf-8").splitlines()]

    async def main():
        figures: dict[str, int] = {}
        async with Client(build_mcp(lambda: state)) as client:
            figures["tool list"] = received_tokens(await client.list_tools(), token_counter)
            for query in queries:
                search = await client.call_tool("search_patterns", {"query": query, "k": 5})
                assert len(search.structured_content["hits"]) == 5
                for part in ("content", "structuredContent"):
                    figures[f"search {part}"] = max(figures.get(f"search {part}", 0), received_tokens(search, token_counter, part))
                pack = await client.call_tool("context_pack", {"query": query, "budget_tokens": 800})
                for part in ("content", "structuredContent"):
                    figures[f"pack {part}"] = max(figures.get(f"pack {part}", 0), received_tokens(pack, token_counter, part))
                passages = pack.structured_content.get("passages", [])
                top = passages[0]["cite"].split("#")[0] if passages else None
                assert not passages or any(re.fullmatch(rf"{top}#solution(-\d+)?", p["cite"]) for p in passages)
        return figures

    figures = anyio.run(main)
    print(figures)
    assert figures["tool list"] <= TOOL_LIST_BUDGET
    assert figures["search content"] <= SEARCH_K5_BUDGET and figures["search structuredContent"] <= SEARCH_K5_BUDGET
    assert figures["pack content"] <= PACK_800_BUDGET and figures["pack structuredContent"] <= PACK_800_BUDGET
