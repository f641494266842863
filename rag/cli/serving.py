"""`rag serve` (HTTP API + MCP over streamable HTTP) and `rag mcp` (MCP over stdio)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import IndexDir, fail, index_encoder, load_state, setup_logging


def serve(
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000).")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index-dir", help="Index directory (default index/, or $RAG_INDEX_DIR).")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text (default) or json: one JSON object per log line.")] = "text",
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, help="Server processes behind the one port, sharing the index's pages (default 1)."),
    ] = None,
) -> None:
    """Serve the HTTP API (and MCP over streamable HTTP at /mcp). Settings also come from RAG_* variables.

    Once this server listens, an example request is printed on stderr."""
    from rag.config import Settings

    if log_format not in ("text", "json"):
        fail(f"--log-format must be text or json, got {log_format!r}")
    try:
        settings = Settings.from_env(os.environ, index_dir=index_dir, host=host, port=port, workers=workers)
    except ValueError as exc:  # the message starts with the variable's name
        fail(str(exc))
    taken = port_taken(settings.host, settings.port)
    if taken:
        fail(
            f"port {settings.port} on {settings.host} is already in use ({taken}); stop that server, or choose another port: "
            f"`PORT={settings.port + 1} make run` or `rag serve --port {settings.port + 1}`"
        )
    limit_malloc_arenas(os.environ)
    setup_logging()
    from rag.errors import IndexError_
    from rag.index.store import current_build, read_manifest, verify
    from rag.serve.http import create_app
    from rag.serve.http.observe import configure_logging
    from rag.serve.http.server import config as server_config

    configure_logging(log_format)
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
    if settings.workers > 1:
        _serve_workers(settings, log_format)
        return
    app = create_app(settings, embedder=index_encoder(settings.index_dir), background_load=True)
    # log_config None: the root logger's handlers (setup_logging, configure_logging) format uvicorn's lines too
    _hinting_server(server_config(app, settings.host, settings.port, log_config=None)).run()


def _serve_workers(settings, log_format: str) -> None:
    """N worker processes behind the one port (uvicorn's supervisor, spawned, the socket bound here): each opens the
    index itself, its vectors, BM25 arrays and model weights memory-mapped, so the workers share those pages. A reload or
    reindex answered by one worker reaches the others through the index folder's generation file (rag.serve.http.app);
    /metrics aggregates every worker (prometheus-client's multiprocess folder)."""
    import shutil
    import tempfile

    from uvicorn.supervisors import Multiprocess

    from rag.serve.http.server import config as server_config

    metrics_dir = tempfile.mkdtemp(prefix="rag-metrics-")
    os.environ.update(
        {
            "RAG_INDEX_DIR": str(settings.index_dir),
            "RAG_WORKERS": str(settings.workers),
            "RAG_LOG_FORMAT": log_format,
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX") or str(os.environ.get("RAG_MALLOC_ARENA_MAX") or MALLOC_ARENAS),
        }
    )
    config = server_config(
        "rag.cli.serving:app_from_environment", settings.host, settings.port, factory=True, workers=settings.workers, log_config=None
    )
    sock = config.bind_socket()
    body = '{"query": "our shelves are full of stock nobody ordered", "k": 3}'
    curl = f"curl -s -X POST http://{settings.host}:{settings.port}/search -H 'content-type: application/json' -d '{body}'"
    typer.echo(f"ready ({settings.workers} workers); try: {curl}", err=True)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def app_from_environment():
    """The app of one worker process of `rag serve --workers N` (uvicorn calls this factory in each spawned process)."""
    from rag.config import Settings
    from rag.serve.http import create_app
    from rag.serve.http.observe import configure_logging

    setup_logging()
    configure_logging(os.environ.get("RAG_LOG_FORMAT", "text"))
    settings = Settings.from_env(os.environ)
    return create_app(settings, embedder=index_encoder(settings.index_dir), background_load=True)


# glibc gives each thread that allocates its own malloc arena (up to 8 per core); freed memory then stays in arenas that
# a later burst may not reuse, and a server's RSS creeps up burst after burst. eval/bench/memory-creep.md measures it.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def limit_malloc_arenas(environ) -> int | None:
    """Cap glibc's malloc arenas for this process before its threads start: RAG_MALLOC_ARENA_MAX (default MALLOC_ARENAS;
    0 leaves glibc's default). MALLOC_ARENA_MAX in the environment already applies at start-up and wins. Returns the cap
    set, or None (not glibc, or left alone)."""
    if environ.get("MALLOC_ARENA_MAX"):
        return None
    try:
        arenas = int(environ.get("RAG_MALLOC_ARENA_MAX", MALLOC_ARENAS))
    except ValueError:
        fail(f"RAG_MALLOC_ARENA_MAX must be a whole number, got {environ.get('RAG_MALLOC_ARENA_MAX')!r}")
    if arenas <= 0:
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return arenas if libc.mallopt(M_ARENA_MAX, arenas) == 1 else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return None


def port_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (None when it can): checked before the model and the index load."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _hinting_server(config):
    """A uvicorn server that prints the example request once it listens (uvicorn is imported only by `rag serve`)."""
    import uvicorn

    class HintingServer(uvicorn.Server):
        """Prints the example request once *this* server listens (never when another process answers the port)."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                host, port = self.config.host, self.config.port
                body = '{"query": "our shelves are full of stock nobody ordered", "k": 3}'
                typer.echo(
                    f"ready; try: curl -s -X POST http://{host}:{port}/search -H 'content-type: application/json' -d '{body}'", err=True
                )

    return HintingServer(config)


def mcp(index_dir: IndexDir = Path("index")) -> None:
    """Serve the MCP tools over stdio (for an agent that launches this command)."""
    setup_logging()
    from rag.serve.mcp import build_mcp

    state = load_state(index_dir)
    build_mcp(lambda: state).run("stdio")
