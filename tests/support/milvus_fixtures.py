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
import uuid
from dataclasses import dataclass

import pytest

from bench.loadgen import free_port  # noqa: F401  (tests import it from here)
from bench.milvus_lite import LiteServer


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
