"""`next_offset` on every paged answer (issue 28): a search over HTTP, the MCP search_patterns tool and `rag search
--json` say where the next page starts, and say nothing on the last page; on patterns/ with the fake encoder."""

from __future__ import annotations

import json

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from typer.testing import CliRunner

from rag.cli import common as cli_common
from rag.cli.app import app
from rag.config import Settings
from rag.serve.http import create_app
from rag.serve.mcp import build_mcp
from rag.serve.state import State
from support import SHELVES


@pytest.fixture(scope="module")
def state(fake_index_dir, fake_encoder):
    return State.load(fake_index_dir, fake_encoder)


def pages_over_http(state, fake_index_dir) -> list[tuple[list[str], int | None]]:
    with TestClient(create_app(Settings(index_dir=fake_index_dir), state=state)) as client:
        bodies = [client.post("/search", json={"query": SHELVES, "k": 2, "offset": offset}).json() for offset in (0, 2, 98)]
    return [([h["slug"] for h in b["hits"]], b.get("next_offset")) for b in bodies]


def pages_over_mcp(state) -> list[tuple[list[str], int | None]]:
    async def main():
        async with Client(build_mcp(lambda: state)) as client:
            return [await client.call_tool("search_patterns", {"query": SHELVES, "k": 2, "offset": offset}) for offset in (0, 2, 98)]

    return [([h["slug"] for h in r.structured_content.get("hits", [])], r.structured_content.get("next_offset")) for r in anyio.run(main)]


def pages_over_cli(fake_index_dir, monkeypatch, fake_encoder) -> list[tuple[list[str], int | None]]:
    monkeypatch.setattr(cli_common, "query_encoder", lambda: fake_encoder)
    monkeypatch.setattr(cli_common, "encoder", lambda: fake_encoder)
    runner = CliRunner()
    out = []
    for offset in (0, 2, 98):
        result = runner.invoke(app, ["search", SHELVES, "-k", "2", "--offset", str(offset), "--json", "--index-dir", str(fake_index_dir)])
        body = json.loads(result.stdout)
        out.append(([h["slug"] for h in body["hits"]], body["next_offset"]))
    return out


def test_every_face_pages_a_search_with_next_offset(state, fake_index_dir, monkeypatch, fake_encoder, fake_retriever):
    slugs = fake_retriever.search(SHELVES, k=4).slugs
    expected = [(slugs[:2], 2), (slugs[2:4], 4), (fake_retriever.search(SHELVES, k=2, offset=98).slugs, None)]
    assert pages_over_http(state, fake_index_dir) == expected
    assert pages_over_mcp(state) == expected
    assert pages_over_cli(fake_index_dir, monkeypatch, fake_encoder) == expected
