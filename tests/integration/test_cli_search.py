"""The read-side CLI through typer's CliRunner: search, show, related, similar, serve (uvicorn stubbed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import common as cli_common
from rag.cli.app import app
from support import SHELVES


@pytest.fixture(autouse=True)
def shared_model(monkeypatch, embedder):
    """Reuse the session's loaded model instead of loading one per command."""
    monkeypatch.setattr(cli_common, "encoder", lambda: embedder)
    monkeypatch.setattr(cli_common, "query_encoder", lambda: embedder)


@pytest.fixture
def run(patterns_index_dir):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [*args, "--index-dir", str(patterns_index_dir)], env={"COLUMNS": "160"})

    return invoke


def test_search_prints_hits_best_first(run):
    result = run("search", SHELVES, "-k", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"3 hits for {SHELVES!r}"
    titles = [line for line in lines if line[:4].strip().isdigit()]
    assert len(titles) == 3
    assert titles[0].startswith(" 1  Pull-Based Replenishment  ")
    assert lines[lines.index(titles[0]) + 1].startswith("    pull-based-replenishment · ")


def test_search_json_with_filters(run, search_index):
    result = run("search", "Open Book Management", "--json", "-k", "2", "--domain", "finance", "--context", "corporate")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["hits"][0]["slug"] == "open-book-management"
    assert body["hits"][0]["context_label"]
    assert body["filters"] == {"domain": "finance", "context": "corporate", "status": None, "min_confidence": None}
    assert body["index_version"] == search_index.version


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "stock", "--domain", "astrology"), "error: domain: unknown domain 'astrology'; valid values: community"),
        (("search", "stock", "-k", "0"), "error: k: k must be between 1 and 100, got 0"),
        (("search", "  "), "error: query: query is empty"),
        (("show", "../etc/passwd"), "error: slug: invalid slug '../etc/passwd'"),
        (("related", "no-such-pattern"), "error: slug: no pattern with slug 'no-such-pattern'"),
        (("show", "open-book-management", "--context", "lunar"), "error: context: unknown context 'lunar'"),
    ],
)
def test_errors_exit_2_with_the_field(run, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_index_says_how_to_build_one(tmp_path):
    result = CliRunner().invoke(app, ["search", "stock", "--index-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no index in" in result.stderr and "rag index LIBRARY" in result.stderr


def test_show_prints_the_pattern_seen_from_a_context(run):
    result = run("show", "pull-based-replenishment", "--context", "activist")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Pull-Based Replenishment\n")
    assert "**In activist terms:** Running a food bank" in result.stdout
    assert "## Problem" in result.stdout or "### Problem" in result.stdout
    as_json = json.loads(run("show", "pull-based-replenishment", "--json").stdout)
    assert as_json["pattern"]["slug"] == "pull-based-replenishment" and as_json["pattern"]["schema"] == "ontology"


def test_related_and_similar(run):
    related = run("related", "pull-based-replenishment")
    assert related.exit_code == 0, related.output
    assert "work-in-progress-limits" in related.stdout and "small-batch-delivery" in related.stdout
    edges = json.loads(run("related", "pull-based-replenishment", "--json").stdout)["related"]
    assert ("standard-work-checklist", "requires", "outgoing") in {(e["slug"], e["relation"], e["direction"]) for e in edges}
    similar = json.loads(run("similar", "pull-based-replenishment", "-k", "3", "--json").stdout)["similar"]
    assert len(similar) == 3 and "pull-based-replenishment" not in [s["slug"] for s in similar]


def test_serve_builds_the_app_for_the_index_and_runs_uvicorn(run, monkeypatch, search_index):
    import uvicorn

    from bench.loadgen import free_port
    from rag.serve.http.server import KEEP_ALIVE_S, TimedH11Protocol

    calls = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls.append(self.config))
    port = free_port()
    result = run("serve", "--host", "127.0.0.1", "--port", str(port))
    assert result.exit_code == 0, result.output
    (config,) = calls
    assert (config.host, config.port, config.http, config.timeout_keep_alive) == ("127.0.0.1", port, TimedH11Protocol, KEEP_ALIVE_S)
    served = config.app
    assert served.state.rag is None and served.state.settings.index_dir == search_index.build_dir.parent.parent  # loads in the background
    assert f"on http://127.0.0.1:{port}" in result.stderr and "/health says loading" in result.stderr


def test_show_without_a_context_reads_one_row_and_prints_what_the_whole_index_would(run, patterns_index_dir, monkeypatch):
    """`rag show SLUG` reads the one pattern's row (rag.index.search_index.read_pattern) instead of opening the
    index; its page and JSON are the same as through the opened index (the --context path)."""
    from rag.index.search_index import SearchIndex, read_pattern

    index = SearchIndex.open(patterns_index_dir)
    for slug in ("pull-based-replenishment", index.patterns[-1].slug):
        manifest, found = read_pattern(patterns_index_dir, slug)
        assert found == index.pattern(slug) and manifest.build_id == index.version
    assert read_pattern(patterns_index_dir, "no-such-pattern")[1] is None
    fast = json.loads(run("show", "pull-based-replenishment", "--json").stdout)
    monkeypatch.setattr("rag.index.search_index.read_pattern", lambda *a: (index.manifest, None))  # force the whole-index path
    full = json.loads(run("show", "pull-based-replenishment", "--json").stdout)
    assert fast == full
    missing = run("show", "no-such-pattern")
    assert missing.exit_code == 2 and "no pattern with slug 'no-such-pattern'" in missing.stderr


def test_show_refuses_an_altered_patterns_file(patterns_index_dir, tmp_path):
    import shutil

    from rag.index.store import current_build

    copy = tmp_path / "copy"
    shutil.copytree(patterns_index_dir, copy, symlinks=True)
    path = current_build(copy) / "patterns.jsonl"
    path.write_bytes(path.read_bytes().replace(b"Pull-Based", b"Push-Based", 1))
    result = CliRunner().invoke(app, ["show", "pull-based-replenishment", "--index-dir", str(copy)])
    assert result.exit_code == 2 and "patterns.jsonl does not match its checksum" in result.stderr
