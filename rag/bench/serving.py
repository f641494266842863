"""A served index in a subprocess (`rag serve` on a free loopback port) and its memory.

The server is a separate process so its resident set size (RSS) is the serving cost alone: Python,
torch, the model and the loaded index, not the bench. `RssSampler` records the peak while load runs.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

SERVE = "from rag.cli import main; main()"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tree_bytes(path: Path) -> int:
    """Bytes of every regular file under `path` (symlinks not followed)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())


class Server:
    """`rag serve --index-dir D` on 127.0.0.1:<free port>; a context manager that waits for /health."""

    def __init__(self, index_dir: Path, log_path: Path, startup_timeout: float = 600.0):
        self.index_dir = Path(index_dir)
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._log = None

    def __enter__(self) -> Server:
        import httpx

        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        command = [sys.executable, "-c", SERVE, "serve", "--index-dir", str(self.index_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        while True:
            if self.process.poll() is not None:
                self._close()
                raise RuntimeError(f"`rag serve` exited with code {self.process.returncode} before answering; see {self.log_path}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > self.startup_timeout:
                self._close()
                raise RuntimeError(f"`rag serve` did not answer /health within {self.startup_timeout:.0f} s; see {self.log_path}")
            time.sleep(0.5)
        self.startup_seconds = round(time.perf_counter() - started, 2)
        return self

    def rss(self) -> int:
        import psutil

        return int(psutil.Process(self.process.pid).memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()


class RssSampler:
    """Samples a server's RSS every `interval` seconds in a thread; `peak` is the largest seen."""

    def __init__(self, server: Server, interval: float = 0.2):
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.server.rss())
            except psutil.Error:  # the process is exiting; the samples so far stand
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def model_only_rss(timeout: float = 300.0) -> int:
    """RSS of a fresh Python process that loaded the model and encoded one query (the fixed part of serving)."""
    code = (
        "import os, psutil\n"
        "from rag.embedding import MiniLMEncoder\n"
        "MiniLMEncoder().encode_query('warm up')\n"
        "print(psutil.Process(os.getpid()).memory_info().rss)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def http_levels(server: Server, queries: list[str], levels: tuple[int, ...], seconds: float) -> dict:
    """p50, p99 and requests per second at each concurrency level, on loopback (rag.loadtest.run_load).

    The caller warms the server first."""
    from rag.bench.loadgen import run_load

    out = {}
    for clients in levels:
        result = run_load(server.base_url, queries, clients=clients, seconds=seconds)
        out[str(clients)] = {key: result[key] for key in ("clients", "seconds", "requests", "errors", "rps", "p50", "p99", "mean", "max")}
        if result["errors"]:
            out[str(clients)]["error_samples"] = result["error_samples"]
        log.info("HTTP %d clients: p50 %.1f ms, p99 %.1f ms, %.1f rps", clients, result["p50"], result["p99"], result["rps"])
    return out
