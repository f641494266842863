"""A real Milvus for the Milvus tests: Milvus Lite 2.5.1 (Milvus's own C++ core) started once per session on
127.0.0.1 over TCP, or whatever server `RAG_MILVUS_URI` names (then nothing is started, and the fault tests
that stop and restart the server are skipped: they need a server this session owns).

Loaded through `pytest_plugins` by tests/integration/test_milvus.py. Traps (from /work/drafts/milvus/NOTES.md):
in TCP mode `Server.stop()` cannot stop the binary (the lock path is not passed to it), so it is sent SIGTERM
first; `start()` only checks that the process did not die, so readiness is polled with a real RPC from a
client with its own connection alias (clients sharing a uri share one connection, and `close()` on one
closes it for all).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import warnings
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiteServer:
    """Milvus Lite 2.5.1 as a TCP server on 127.0.0.1:`port`, its data in `data_dir` (kept across restarts)."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = Path(data_dir), port
        self.uri = f"http://127.0.0.1:{port}"
        self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, ready_timeout: float = 60.0) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus_lite imports pkg_resources (a UserWarning)
            from milvus_lite.server import Server
        from pymilvus import MilvusClient

        started = time.perf_counter()
        server = Server(str(self.data_dir / "milvus.db"), address=f"127.0.0.1:{self.port}")
        if not server.init() or not server.start():
            raise RuntimeError("milvus-lite failed to start")
        self._server = server
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                with closing(socket.create_connection(("127.0.0.1", self.port), timeout=0.5)):
                    pass
                probe = MilvusClient(uri=self.uri, timeout=2, alias=f"ready-{uuid.uuid4().hex[:8]}")
                try:
                    probe.list_collections(timeout=2)
                finally:
                    probe.close()
                return time.perf_counter() - started
            except Exception:
                if server._p.poll() is not None:
                    raise RuntimeError(f"milvus-lite exited with {server._p.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        process = getattr(server, "_p", None)
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: Server.stop() alone would wait 2 s and SIGKILL
            try:
                process.wait(timeout=10)
            except Exception:
                process.kill()
        server.stop()  # releases and unlinks the lock file


@dataclass
class MilvusTarget:
    uri: str
    token: str | None
    server: LiteServer | None  # None when RAG_MILVUS_URI names an outside server


@pytest.fixture(scope="session")
def milvus(tmp_path_factory) -> MilvusTarget:
    import logging

    for name in ("pymilvus", "pymilvus.milvus_client"):  # expected failures (fault tests) log tracebacks at ERROR
        logging.getLogger(name).setLevel(logging.CRITICAL)
    uri = os.environ.get("RAG_MILVUS_URI")
    if uri:
        yield MilvusTarget(uri, os.environ.get("RAG_MILVUS_TOKEN") or None, None)
        return
    server = LiteServer(tmp_path_factory.mktemp("milvus-lite"), free_port())
    server.start()
    try:
        yield MilvusTarget(server.uri, None, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milvus_prefix() -> str:
    """A collection prefix of this session, so runs against a shared server never touch each other's collections."""
    return f"ragtest_{uuid.uuid4().hex[:8]}"
