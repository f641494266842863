"""`rag serve` (HTTP API + MCP over streamable HTTP) and `rag mcp` (MCP over stdio)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import IndexDir, fail, index_encoder, load_state, setup_logging


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000).")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index-dir", help="Index directory (default index/, or $RAG_INDEX_DIR).")] = None,
) -> None:
    """Serve the HTTP API (and MCP over streamable HTTP at /mcp). Settings also come from RAG_* variables.

    Once the server answers, an example request is printed on stderr."""
    from rag.config import Settings

    try:
        settings = Settings.from_env(os.environ, index_dir=index_dir, host=host, port=port)
    except ValueError as exc:  # the message starts with the variable's name
        fail(str(exc))
    setup_logging()
    import uvicorn

    from rag.errors import IndexError_
    from rag.index.store import current_build, read_manifest, verify
    from rag.serve.http import create_app

    try:  # a missing, corrupt or other model's index fails here, before the server starts (checksums only: fast)
        build = current_build(settings.index_dir)
        verify(build, read_manifest(build), index_encoder(settings.index_dir).info.record)
    except IndexError_ as exc:
        fail(str(exc))
    typer.echo(
        f"serving {settings.index_dir} on http://{settings.host}:{settings.port} (MCP at /mcp, docs at /docs); /health says loading until "
        f"the index is open",
        err=True,
    )
    stop = threading.Event()
    threading.Thread(target=_hint_when_listening, args=(settings.host, settings.port, stop), daemon=True).start()
    try:
        uvicorn.run(
            create_app(settings, embedder=index_encoder(settings.index_dir), background_load=True),
            host=settings.host,
            port=settings.port,
            log_level="info",
        )
    finally:
        stop.set()


def _hint_when_listening(host: str, port: int, stop: threading.Event, timeout_s: float = 120.0) -> None:
    """Print the example request once the port accepts connections (not before, when it would scroll away)."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            stop.wait(0.25)
            continue
        body = '{"query": "our shelves are full of stock nobody ordered", "k": 3}'
        typer.echo(f"ready; try: curl -s -X POST http://{host}:{port}/search -H 'content-type: application/json' -d '{body}'", err=True)
        return


def mcp(index_dir: IndexDir = Path("index")) -> None:
    """Serve the MCP tools over stdio (for an agent that launches this command)."""
    setup_logging()
    from rag.serve.mcp import build_mcp

    state = load_state(index_dir)
    build_mcp(lambda: state).run("stdio")
