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

SERVE = "from rag.cli.app import main; main()"  # the `rag` command, run by this Python


def child_env() -> dict[str, str]:
    """The environment of the bench's child processes: this one's, offline, without tokenizer threads."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tree_bytes(path: Path) -> int:
    """Bytes of every regular file under `path` (symlinks not followed)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())


class Server:
    """`rag serve --index-dir D` on 127.0.0.1:<free port>; a context manager that waits until /health says it can search."""

    def __init__(self, index_dir: Path, log_path: Path, startup_timeout: float = 600.0, env: dict[str, str] | None = None):
        self.index_dir = Path(index_dir)
        self.env = dict(env or {})  # e.g. RAG_BATCH_MAX=1: batching off
        self.log_path = Path(log_path)
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None  # the first /health answer (it may say "loading")
        self.ready_seconds: float | None = None  # the first /health that no longer says "loading"
        self._log = None

    def __enter__(self) -> Server:
        import httpx

        env = {**child_env(), **self.env}
        command = [
            sys.executable,
            "-c",
            SERVE,
            "serve",
            "--index-dir",
            str(self.index_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = open(self.log_path, "wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        while True:
            if self.process.poll() is not None:
                self._close()
                raise RuntimeError(f"`rag serve` exited with code {self.process.returncode} before answering; see {self.log_path}")
            try:
                reply = httpx.get(self.base_url + "/health", timeout=2.0)
                if reply.status_code in (200, 503):  # 503 while loading: the server answers, it cannot search yet
                    if self.startup_seconds is None:
                        self.startup_seconds = round(time.perf_counter() - started, 2)
                    status = reply.json().get("status")
                    if status == "error":
                        self._close()
                        raise RuntimeError(
                            f"`rag serve` could not open {self.index_dir}: {reply.json().get('detail')}; see {self.log_path}"
                        )
                    if status != "loading":  # measure only a server that can search
                        break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > self.startup_timeout:
                self._close()
                raise RuntimeError(f"`rag serve` did not answer /health within {self.startup_timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)
        self.ready_seconds = round(time.perf_counter() - started, 2)
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


def model_only_rss(kind: str = "auto", timeout: float = 300.0) -> int:
    """RSS of a fresh Python process that loaded the query encoder `kind` (auto: what serving uses; torch:
    sentence-transformers) and encoded one query: the fixed part of serving."""
    code = (
        "from rag.embedding.choose import query_encoder\n"
        f"encoder = query_encoder(kind={kind!r})\n"  # kept referenced: a temporary's weights would be freed before the RSS is read
        "encoder.encode_query('warm up')\n"
    )
    return child_rss(code, timeout)


def child_rss(code: str, timeout: float = 300.0) -> int:
    """RSS in bytes of a fresh Python process (the bench's environment) once it has run `code`."""
    code += "\nimport os, psutil\nprint(psutil.Process(os.getpid()).memory_info().rss)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=child_env(), check=True)
    return int(out.stdout.strip().splitlines()[-1])


def http_levels(server: Server, queries: list[str], levels: tuple[int, ...], seconds: float) -> dict:
    """p50, p99 and requests per second at each concurrency level, on loopback (bench.loadgen.run_load).

    The caller warms the server first."""
    from bench.loadgen import run_load

    out = {}
    for clients in levels:
        result = run_load(server.base_url, queries, clients=clients, seconds=seconds)
        out[str(clients)] = {key: result[key] for key in ("clients", "seconds", "requests", "errors", "rps", "p50", "p99", "mean", "max")}
        if result["errors"]:
            out[str(clients)]["error_samples"] = result["error_samples"]
        log.info("HTTP %d clients: p50 %.1f ms, p99 %.1f ms, %.1f rps", clients, result["p50"], result["p99"], result["rps"])
    return out


# -- time to first answer -----------------------------------------------------------------------------
def first_answers(index_dir: Path, slug: str, query: str, log_dir: Path, timeout: float = 600.0) -> dict:
    """Seconds from starting each command to its first answer, each in a fresh process on the same index:
    `rag show SLUG`, `rag serve` (/health answering at all, in `loading` or `ok`; then the first search),
    `rag mcp` over stdio (the `initialize` handshake's reply; then the first `search_patterns` reply)."""
    import httpx

    env = child_env()
    out: dict = {}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SERVE, "show", slug, "--index-dir", str(index_dir)], capture_output=True, env=env, timeout=timeout
    )
    out["show"] = {"seconds": round(time.perf_counter() - started, 2), "exit_code": done.returncode}

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_dir / "first-answer-serve.log", "wb") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--index-dir", str(index_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            health = status = None
            while time.perf_counter() - started < timeout and process.poll() is None:
                try:
                    reply = httpx.get(url + "/health", timeout=2.0)
                    if health is None:
                        health, status = round(time.perf_counter() - started, 2), reply.json().get("status")
                    searched = httpx.post(url + "/search", json={"query": query, "k": 5}, timeout=60.0)
                    if searched.status_code == 200:
                        out["serve"] = {
                            "health_seconds": health,
                            "health_status": status,
                            "first_search_seconds": round(time.perf_counter() - started, 2),
                        }
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(timeout=30)
    out.setdefault("serve", {"error": "no answer", "log": str(log_dir / "first-answer-serve.log")})
    out["mcp"] = _mcp_first_answer(index_dir, query, env, timeout)
    return out


def _mcp_first_answer(index_dir: Path, query: str, env: dict, timeout: float) -> dict:
    """`rag mcp` on stdio: JSON-RPC lines in, the reply to `initialize` timed, then one tool call."""
    import json

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "mcp", "--index-dir", str(index_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    out: dict = {}

    def send(message: dict) -> None:
        process.stdin.write((json.dumps(message) + "\n").encode())
        process.stdin.flush()

    def reply(wanted: int) -> dict:
        while True:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"rag mcp closed its output (exit code {process.poll()})")
            message = json.loads(line)
            if message.get("id") == wanted:
                return message

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
            }
        )
        reply(1)
        out["handshake_seconds"] = round(time.perf_counter() - started, 2)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "search_patterns", "arguments": {"query": query, "k": 5}},
            }
        )
        answer = reply(2)
        out["first_search_seconds"] = round(time.perf_counter() - started, 2)
        out["search_error"] = bool(answer.get("error") or (answer.get("result") or {}).get("isError"))
    except Exception as exc:  # recorded in the report; the other commands' figures stand
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        process.kill()
        process.wait(timeout=30)
    return out
