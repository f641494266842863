"""`rag serve --workers 2` (issue 29): both workers answer on one port, a reload answered by one reaches the other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.loadgen import free_port
from rag.config import BuildSettings
from rag.index.build import build_index
from rag.index.store import current_build
from support import PATTERNS, SHELVES

RAG = str(Path(sys.executable).parent / "rag")
TOKEN = "workers-admin-token"


def health_by_worker(url: str, want: int, seconds: float = 90.0) -> dict[int, str]:
    """The index version each worker serves, read from /health over fresh connections until `want` workers answered."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            body = httpx.get(url + "/health", timeout=5).json()
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if body.get("status") == "ok":
            seen[body["worker"]] = body["index_version"]
            if len(seen) >= want:
                return seen
        time.sleep(0.05)
    return seen


def test_two_workers_answer_and_both_follow_a_reload(patterns_index_dir, embedder, embedding_cache_dir, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(patterns_index_dir, index_dir, symlinks=True)
    port = free_port()
    env = {**os.environ, "RAG_ADMIN_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [RAG, "serve", "--index-dir", str(index_dir), "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        first = health_by_worker(url, 2)
        assert len(first) == 2 and set(first.values()) == {current_build(index_dir).name}, first
        answers = {httpx.post(url + "/search", json={"query": SHELVES, "k": 3}, timeout=30).json()["hits"][0]["slug"] for _ in range(6)}
        assert answers == {"pull-based-replenishment"}
        rebuilt = build_index(BuildSettings(PATTERNS, index_dir, cache_dir=embedding_cache_dir, rebuild=True), embedder)
        reload = httpx.post(url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert reload.status_code == 200 and reload.json()["index_version"] == rebuilt.build_id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = health_by_worker(url, 2)
            if set(now.values()) == {rebuilt.build_id} and len(now) == 2:
                break
            time.sleep(0.5)
        assert set(now.values()) == {rebuilt.build_id} and len(now) == 2, now
        metrics = httpx.get(url + "/metrics", timeout=10).text
        assert 'rag_http_requests_total{method="POST",route="/search",status="200"} 6.0' in metrics  # both workers, summed
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
