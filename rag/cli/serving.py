"""`rag serve` (HTTP API + MCP over streamable HTTP) and `rag mcp` (MCP over stdio)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.common import IndexDir, fail, load_state, setup_logging


def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default 8000).")] = None,
    index_dir: Annotated[Optional[Path], typer.Option("--index-dir", help="Index directory (default index/, or $RAG_INDEX_DIR).")] = None,
) -> None:
    """Serve the HTTP API (and MCP over streamable HTTP at /mcp). Settings also come from RAG_* variables."""
    setup_logging()
    import uvicorn

    from rag.serve.http import create_app
    from rag.config import Settings

    try:
        settings = Settings.from_env(os.environ, index_dir=index_dir, host=host, port=port)
    except ValueError as exc:
        fail(str(exc))
    state = load_state(settings.index_dir, settings.milvus)
    typer.echo(f"serving index {state.version} on http://{settings.host}:{settings.port} (MCP at /mcp, docs at /docs)", err=True)
    uvicorn.run(create_app(settings, state=state), host=settings.host, port=settings.port, log_level="info")


def mcp(index_dir: IndexDir = Path("index")) -> None:
    """Serve the MCP tools over stdio (for an agent that launches this command)."""
    setup_logging()
    from rag.serve.mcp import build_mcp

    state = load_state(index_dir)
    build_mcp(lambda: state).run("stdio")
