"""Fast start (issue 14): model-free commands never import torch; a server answers /health while loading."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from support import PATTERNS, REPO

CHECK = """
import sys
from typer.testing import CliRunner
from rag.cli.app import app
result = CliRunner().invoke(app, sys.argv[1:])
print(result.exit_code)
print("torch" in sys.modules)
"""


def run_cli(*args: str) -> tuple[int, bool]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    code, torch_loaded = out.stdout.strip().splitlines()[-2:]
    return int(code), torch_loaded == "True"


@pytest.mark.parametrize(
    "args",
    [
        ("show", "open-book-management"),
        ("related", "pull-based-replenishment"),
        ("search", "   "),  # an input error
        ("show", "no-such-pattern"),
    ],
)
def test_model_free_commands_never_import_torch(patterns_index_dir, args):
    code, torch_loaded = run_cli(*args, "--index-dir", str(patterns_index_dir))
    assert not torch_loaded, args
    assert code == (0 if args[1] in ("open-book-management", "pull-based-replenishment") else 2)


def test_validate_and_an_unchanged_index_never_import_torch(tmp_path, patterns_index_dir):
    import shutil

    code, torch_loaded = run_cli("validate", str(PATTERNS))
    assert (code, torch_loaded) == (0, False)
    index_dir = tmp_path / "ix"
    shutil.copytree(patterns_index_dir, index_dir, symlinks=True)
    code, torch_loaded = run_cli("index", str(PATTERNS), "--index-dir", str(index_dir))
    assert (code, torch_loaded) == (0, False)


def test_serve_answers_health_while_loading_then_ok(patterns_index_dir):
    from bench.loadgen import free_port

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX_DIR": str(patterns_index_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--port", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        statuses: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            statuses.append(body["status"])
            if body["status"] == "ok" and body.get("model_ready"):
                break
            time.sleep(0.05)
        assert statuses and statuses[-1] == "ok", statuses
        assert body["device"] in ("cpu", "cuda")  # the serving encoder's, once loaded (CUDA when torch sees a GPU)
        assert body["query_encoder"] == "numpy"  # a CPU build of torch: queries go through the numpy forward pass
        search = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "stock nobody ordered", "k": 1}, timeout=30)
        assert search.status_code == 200 and search.json()["hits"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_loading_server_answers_503_with_retry_after_then_serves(patterns_index_dir, embedder, monkeypatch):
    import threading

    from fastapi.testclient import TestClient

    from rag.config import Settings
    from rag.serve.http.app import create_app
    from rag.serve.state import State

    gate = threading.Event()
    real = State.load
    monkeypatch.setattr(State, "load", classmethod(lambda cls, *a, **kw: (gate.wait(60), real(*a, **kw))[1]))
    app = create_app(Settings(index_dir=patterns_index_dir), embedder=embedder, background_load=True)
    with TestClient(app) as client:
        loading, early = client.get("/health").json(), client.post("/search", json={"query": "stock"})
        gate.set()
        deadline = time.monotonic() + 60
        while client.get("/health").json()["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        late = client.post("/search", json={"query": "stock", "k": 1})
    assert loading["status"] == "loading" and loading["worker"] == os.getpid()
    assert early.status_code == 503 and early.headers["retry-after"] == "2" and "loading" in early.json()["detail"]
    assert late.status_code == 200 and late.json()["hits"]
