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
    if settings.workers > 1:
        _prepare_workers(log_format)
    taken = port_taken(settings.host, settings.port)
    if taken:
        fail(
            f"port {settings.port} on {settings.host} is already in use ({taken}); stop that server, or choose another port: "
            f"`PORT={settings.port + 1} make run` or `rag serve --port {settings.port + 1}`"
        )
    limit_malloc_arenas(os.environ)
    limit_blas_threads(os.environ)
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
    """N worker processes behind the one port, forked from this one once it has opened the index and loaded the model
    (the socket bound here, each worker running its own uvicorn server on it): the workers share the loaded index's and
    model's memory pages (numpy arrays and memory maps; Python objects frozen out of the garbage collector's reach, so
    copy-on-write leaves most of them shared too). A reload or reindex answered by one worker is announced in the index
    folder and followed by the others (rag.serve.http.state); /metrics aggregates every worker (prometheus-client's
    multiprocess folder, set up before the metrics exist: `_prepare_workers`). A worker that dies is forked again."""
    import gc
    import signal

    import uvicorn

    from rag.serve.http import create_app
    from rag.serve.http.server import config as server_config
    from rag.serve.state import State

    state = State.load(settings.index_dir, index_encoder(settings.index_dir), settings.retriever, warm=True, milvus=settings.milvus)
    config = server_config(create_app(settings, state=state), settings.host, settings.port, log_config=None)
    config.load()
    sock = config.bind_socket()
    gc.collect()
    gc.freeze()  # what is loaded now stays where it is: the workers' pages stay shared
    children: dict[int, int] = {}
    stopping = False

    def fork(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # a worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                uvicorn.Server(config).run(sockets=[sock])
            finally:
                os._exit(0)
        children[pid] = slot

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for slot in range(settings.workers):
        fork(slot)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    body = '{"query": "our shelves are full of stock nobody ordered", "k": 3}'
    curl = f"curl -s -X POST http://{settings.host}:{settings.port}/search -H 'content-type: application/json' -d '{body}'"
    typer.echo(f"ready ({settings.workers} workers); try: {curl}", err=True)
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            slot = children.pop(pid, None)
            if slot is not None and not stopping:
                typer.echo(f"worker {pid} exited (status {status}); starting another", err=True)
                fork(slot)
    finally:
        import shutil

        shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)


def _prepare_workers(log_format: str) -> None:
    """Before anything creates a metric: the folder every worker writes its metrics to (aggregated by /metrics)."""
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rag-metrics-")
    os.environ["RAG_LOG_FORMAT"] = log_format


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


# eval/bench/efficiency.md (bmn, 2 cores): one BLAS thread per search against numpy's default (one per core): at 32
# clients 164 against 150 requests/s and p99 1.5x the mean against 2.7x; one client 9.0 against 8.3 ms p50
BLAS_THREADS = 1


def limit_blas_threads(environ) -> int | None:
    """RAG_BLAS_THREADS: the BLAS/OpenMP threads one search may use (threadpoolctl; default BLAS_THREADS, 0 leaves numpy's
    default of one per core). Returns the limit set, or None."""
    value = environ.get("RAG_BLAS_THREADS") or str(BLAS_THREADS)
    try:
        threads = int(value)
    except ValueError:
        fail(f"RAG_BLAS_THREADS must be a whole number, got {value!r}")
    if threads <= 0:
        return None
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    return threads


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
