"""The README and docs/ (issue 28): every command the README shows runs on patterns/, and every relative link of the
README and of docs/ resolves."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.loadgen import free_port
from support import PATTERNS, REPO

RAG = str(Path(sys.executable).parent / "rag")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def shell_lines(markdown: str) -> list[str]:
    """The commands of the ```sh blocks, continuation lines joined, comments and `make` lines dropped."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        pending = ""
        for line in block.splitlines():
            line = line.split("  #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
            if not line:
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if not command.startswith("make "):
                out.append(command)
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, patterns_index_dir) -> Path:
    """A folder laid out like the repository after `make run`: patterns/ and its index at index/."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(PATTERNS, root / "patterns")
    shutil.copytree(patterns_index_dir, root / "index", symlinks=True)
    shutil.copytree(REPO / "eval" / "dev", root / "eval" / "dev")
    return root


def test_every_command_the_readme_shows_runs_on_patterns(workdir):
    commands = shell_lines((REPO / "README.md").read_text(encoding="utf-8"))
    assert any(c.startswith("rag search") for c in commands) and any(c.startswith("curl") for c in commands)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"}
    port = free_port()
    server = subprocess.Popen(
        [RAG, "serve", "--port", str(port)], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        for command in commands:
            words = shlex.split(command.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
            if words[0] == "rag":
                words[0] = RAG
            elif words[0] == "curl" and not shutil.which("curl"):
                pytest.skip("curl is not installed")
            done = subprocess.run(words, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
            assert done.stdout.strip() or "--report" in command, command  # every command answers something
            if words[0] == "curl":
                assert '"hits"' in done.stdout and '"pull-based-replenishment"' in done.stdout, done.stdout[:500]
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize("document", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))])
def test_every_relative_link_resolves(document):
    path = REPO / document
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        assert resolved.exists(), f"{document}: {target} does not resolve"


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200
