"""Milvus Lite 2.5.1 (Milvus's own C++ core) as a real TCP server on 127.0.0.1, for the Milvus tests and the
Milvus bench. Traps (from the research notes): in TCP mode `Server.stop()` cannot stop the binary, so it is sent
SIGTERM first; `start()` only checks that the process did not die, so readiness is polled with a real RPC from a
client with its own connection alias (clients sharing a uri share one connection, and `close()` on one closes
it for all).
"""

from __future__ import annotations

import socket
import time
import uuid
import warnings
from contextlib import closing
from pathlib import Path

from bench.loadgen import free_port


class LiteServer:
    """Milvus Lite 2.5.1 as a TCP server on 127.0.0.1:`port`, its data in `data_dir` (kept across restarts)."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir, self.port = Path(data_dir), port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
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

    def __enter__(self) -> LiteServer:
        """Start (recording `start_seconds`); stopped on exit."""
        try:
            self.start_seconds = round(self.start(), 3)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
