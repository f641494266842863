"""MCP tools through the SDK's own client: over stdio (`rag mcp` as a subprocess) and over streamable
HTTP mounted on the API, served by a real uvicorn on 127.0.0.1 (which also answers REST over HTTP)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest

from support import SHELVES
import uvicorn
from mcp import Client, StdioServerParameters

from rag.serve.http import create_app
from rag.config import Settings

TOOLS = {"search_patterns", "get_pattern", "related_patterns", "list_facets", "context_pack"}


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
    assert "hits" in tools["search_patterns"].output_schema["properties"]

    out = {}
    search = await client.call_tool("search_patterns", {"query": SHELVES, "k": 3})
    assert not search.is_error
    out["search"] = search.structured_content
    assert "pull-based-replenishment" in [h["slug"] for h in out["search"]["hits"]]
    assert out["search"]["index_version"] == version

    pattern = await client.call_tool("get_pattern", {"slug": "open-book-management", "context": "activist"})
    assert pattern.structured_content["pattern"]["title"] == "Open Book Management"
    assert pattern.structured_content["context_label"].startswith("Keeping a collective's books open")

    related = await client.call_tool("related_patterns", {"slug": "pull-based-replenishment", "similar": 3})
    out["related"] = related.structured_content
    assert ("small-batch-delivery", "enables") in {(r["slug"], r["kind"]) for r in out["related"]["related"]}
    assert len(out["related"]["similar"]) == 3

    facets = await client.call_tool("list_facets", {})
    assert {"value": "stable", "count": 25} in facets.structured_content["statuses"]

    pack = await client.call_tool("context_pack", {"query": SHELVES, "budget_tokens": 400})
    out["context"] = pack.structured_content
    assert out["context"]["tokens"] <= 400
    assert out["context"]["passages"][0]["cite"].startswith("pull-based-replenishment#")

    bad_filter = await client.call_tool("search_patterns", {"query": SHELVES, "domain": "astrology"})
    assert bad_filter.is_error and "domain: unknown domain 'astrology'; valid values: community" in bad_filter.content[0].text
    path_slug = await client.call_tool("get_pattern", {"slug": "../../etc/passwd"})
    assert path_slug.is_error and "slug: invalid slug" in path_slug.content[0].text
    unknown = await client.call_tool("related_patterns", {"slug": "no-such-pattern"})
    assert unknown.is_error and "no pattern with slug 'no-such-pattern'" in unknown.content[0].text
    empty = await client.call_tool("search_patterns", {"query": ""})
    assert empty.is_error and "query: query is empty" in empty.content[0].text
    big_k = await client.call_tool("search_patterns", {"query": SHELVES, "k": 1000})
    assert big_k.is_error and "\nk\n" in big_k.content[0].text and "less than or equal to 100" in big_k.content[0].text
    return out


def test_mcp_over_streamable_http_mounted_on_the_api(server_url, search_index):
    async def main():
        async with Client(f"{server_url}/mcp") as client:
            return await exercise(client, search_index.version)

    out = anyio.run(main)
    assert out["search"]["hits"][0]["evidence"]


def test_rest_over_real_http(server_url, search_index):
    with httpx.Client(base_url=server_url, timeout=30) as http:
        body = http.post("/search", json={"query": "Open Book Management", "k": 3}).json()
        assert body["hits"][0]["slug"] == "open-book-management"
        assert body["index_version"] == search_index.version
        bad = http.post("/search", json={"query": "stock", "k": 0})
        assert (bad.status_code, bad.json()["field"]) == (422, "k")
        # The MCP endpoint refuses a foreign Host header (DNS rebinding) on a loopback server.
        rebinding = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Host": "evil.example", "accept": "application/json, text/event-stream"})
        assert rebinding.status_code in (400, 403, 421)


def test_mcp_over_stdio_with_rag_mcp(patterns_index_dir, search_index):
    rag = Path(sys.executable).with_name("rag")
    params = StdioServerParameters(
        command=str(rag),
        args=["mcp", "--index-dir", str(patterns_index_dir)],
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PATH": os.environ.get("PATH", "")},
    )

    async def main():
        async with Client(params, read_timeout_seconds=120) as client:  # the subprocess loads the model first
            return await exercise(client, search_index.version)

    out = anyio.run(main)
    assert out["context"]["markdown"].startswith(f"# Context for: {SHELVES}")
