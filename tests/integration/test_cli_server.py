"""`rag search --server URL` (and RAG_SERVER) against a real `rag serve` app under uvicorn on a free port, with
patterns/ indexed by the fake encoder: the same lines and JSON as a local search, the local command's errors,
no torch, and clear messages when the server is unreachable or still loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from bench.loadgen import free_port, serve_in_thread
from rag.cli import common as cli_common
from rag.cli.app import app
from rag.config import Settings
from rag.serve.http import create_app
from rag.serve.state import State
from support import REPO, SHELVES


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, fake_encoder):
    monkeypatch.setattr(cli_common, "encoder", lambda: fake_encoder)  # the local searches compared against
    monkeypatch.setattr(cli_common, "query_encoder", lambda: fake_encoder)


@pytest.fixture(scope="module")
def server(fake_index_dir, fake_encoder):
    state = State.load(fake_index_dir, fake_encoder, warm=False)
    with serve_in_thread(create_app(Settings(index_dir=fake_index_dir), state=state)) as base:
        yield base


@pytest.fixture
def rag(fake_index_dir):
    runner = CliRunner()

    def invoke(*args: str, server: str | None = None, env: dict | None = None):
        where = ["--server", server] if server else ["--index-dir", str(fake_index_dir)]
        result = runner.invoke(app, ["search", *args, *where], env={"COLUMNS": "80", "RAG_SERVER": None, **(env or {})})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


CASES = [
    (SHELVES, "-k", "5"),
    (SHELVES, "-k", "2", "--offset", "2", "--explain"),
    ("member-owned", "--domain", "governance", "--context", "activist", "-k", "3"),
    (SHELVES, "--reader", "government", "--group-duplicates", "--min-confidence", "0.6"),
    ("Open Book Management", "-k", "3"),
    ("zzzz qqqq", "--status", "stable", "-k", "1"),
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a)[:40])
def test_remote_search_prints_what_a_local_search_prints(rag, server, args):
    local, remote = rag(*args), rag(*args, server=server)
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert remote.stdout == local.stdout
    assert remote.stderr == local.stderr
    if "--explain" in args:
        assert any(line.startswith("fusion: learned (dense 1") for line in remote.stdout.splitlines())


def test_remote_json_is_the_local_json_and_names_the_expected_hits(rag, server):
    local = json.loads(rag(SHELVES, "-k", "5", "--json").stdout)
    remote = json.loads(rag(SHELVES, "-k", "5", "--json", server=server).stdout)
    assert [h["slug"] for h in remote["hits"]][:1] == ["pull-based-replenishment"]
    assert remote["fusion"] and remote["timings_ms"]  # --json explains, as locally
    local.pop("timings_ms"), remote.pop("timings_ms")
    assert remote == local


def test_rag_server_variable_and_the_flag_winning_over_it(rag, server):
    dead = f"http://127.0.0.1:{free_port()}"
    by_env = rag(SHELVES, "-k", "3", env={"RAG_SERVER": server})
    assert by_env.exit_code == 0 and "pull-based-replenishment" in by_env.stdout
    by_flag = CliRunner().invoke(app, ["search", SHELVES, "-k", "3", "--server", server], env={"RAG_SERVER": dead, "COLUMNS": "80"})
    assert by_flag.exit_code == 0 and by_flag.stdout == by_env.stdout
    assert rag(SHELVES, env={"RAG_SERVER": dead}).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ("stock", "--domain", "astrology"),
        ("stock", "--context", "martian"),
        ("stock", "--reader", "lunar"),
        ("  ",),
        ("",),
    ],
    ids=["domain", "context", "reader", "blank", "empty"],
)
def test_an_error_the_server_answers_reads_as_the_local_one(rag, server, args):
    local, remote = rag(*args), rag(*args, server=server)
    assert local.exit_code == remote.exit_code == 2
    assert remote.stderr == local.stderr and remote.stderr.startswith("error: ")


def test_an_unreachable_server_is_one_line_naming_the_url(rag):
    dead = f"http://127.0.0.1:{free_port()}"
    result = rag(SHELVES, server=dead)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot reach the server at {dead} (") and result.stderr.count("\n") == 1
    assert "--server or RAG_SERVER" in result.stderr


def test_a_loading_server_is_said_to_be_loading(rag, fake_index_dir, fake_encoder, monkeypatch):
    gate = threading.Event()
    real = State.load
    monkeypatch.setattr(State, "load", classmethod(lambda cls, *a, **kw: (gate.wait(60), real(*a, **kw))[1]))
    try:
        with serve_in_thread(create_app(Settings(index_dir=fake_index_dir), embedder=fake_encoder, background_load=True)) as base:
            result = rag(SHELVES, server=base)
            gate.set()
    finally:
        gate.set()
    assert result.exit_code == 2
    assert result.stderr == f"error: the server at {base} is still loading its index; retry in 2 s\n"


def test_a_server_that_is_not_rag_serve_is_named(rag, server):
    result = rag(SHELVES, server=f"{server}/nothing-here")
    assert result.exit_code == 2 and "answered /search with HTTP 404; is it a `rag serve`?" in result.stderr


CHECK = """
import sys
from typer.testing import CliRunner
from rag.cli.app import app
result = CliRunner().invoke(app, sys.argv[1:], env={"COLUMNS": "80"})
print(result.stdout)
print(result.exit_code)
print(sorted(m for m in ("torch", "sentence_transformers", "faiss", "rag.index.search_index", "rag.serve.service") if m in sys.modules))
"""


def test_a_remote_search_never_imports_torch_nor_opens_an_index(server):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_SERVER": server}
    out = subprocess.run(
        [sys.executable, "-c", CHECK, "search", SHELVES, "-k", "3", "--index-dir", "/nonexistent"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    *printed, code, loaded = out.stdout.strip().splitlines()
    assert (code, loaded) == ("0", "[]"), out.stdout + out.stderr
    assert any(line.startswith(" 1  Pull-Based Replenishment") for line in printed), printed
