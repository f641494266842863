"""`rag validate` through typer's CliRunner: exit codes, JSON on stdout, the human table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli.app import app
from support import front_matter, write_pattern

PATTERNS = Path(__file__).resolve().parents[2] / "patterns"
runner = CliRunner()


def test_project_patterns_validate_clean():
    result = runner.invoke(app, ["validate", str(PATTERNS), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    files = len(list(PATTERNS.glob("*.md")))
    assert files >= 25
    assert report == {
        "root": str(PATTERNS),
        "counts": {"files": files, "patterns": files, "errors": 0, "warnings": 0, "schema_ontology": files},
        "problems": [],
    }


def test_a_broken_file_exits_1_with_its_problem_in_json(tmp_path):
    write_pattern(tmp_path, "good", front_matter("good"))
    write_pattern(tmp_path, "misnamed", front_matter("other"))
    (tmp_path / "bad.md").write_text("no front matter\n")
    result = runner.invoke(app, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "root": str(tmp_path),
        "counts": {"files": 3, "patterns": 2, "errors": 1, "warnings": 1, "schema_ontology": 2},
        "problems": [
            {
                "path": "bad.md",
                "location": "line 1",
                "reason": "no front matter: the file must start with a '---' line",
                "severity": "error",
            },
            {
                "path": "misnamed.md",
                "location": "field slug",
                "reason": "slug 'other' differs from the file name 'misnamed'",
                "severity": "warning",
            },
        ],
    }


def test_warnings_alone_exit_0(tmp_path):
    write_pattern(tmp_path, "misnamed", front_matter("other"))
    result = runner.invoke(app, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["counts"]["warnings"] == 1


def test_table_output_names_the_broken_file(tmp_path):
    write_pattern(tmp_path, "good", front_matter("good"))
    (tmp_path / "bad.md").write_text("")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.md" in result.stdout
    assert "empty file" in result.stdout
    assert "patterns" in result.stdout


def test_missing_folder_exits_2_with_a_message_on_stderr(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"error: pattern library folder not found: {tmp_path / 'nowhere'}" in result.stderr


def test_an_empty_folder_is_an_error_not_a_silent_success(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: no pattern files (*.md) in {tmp_path}; nothing to validate"


def test_index_of_an_empty_or_missing_folder_says_so_without_a_traceback(tmp_path):
    empty = runner.invoke(app, ["index", str(tmp_path), "--index-dir", str(tmp_path / "idx")])
    assert (empty.exit_code, empty.stderr.strip()) == (2, f"error: no pattern files (*.md) in {tmp_path}; nothing to index")
    missing = runner.invoke(app, ["index", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "idx")])
    assert (missing.exit_code, missing.stderr.strip()) == (2, f"error: pattern library folder not found: {tmp_path / 'nowhere'}")
    assert "Traceback" not in empty.output + missing.output


def test_an_oversized_file_names_the_limit_and_the_option_that_raises_it(tmp_path):
    path = write_pattern(tmp_path, "big", front_matter("big", summary="x" * 300_000))
    size = path.stat().st_size
    refused = runner.invoke(app, ["validate", str(tmp_path), "--max-file-mb", "0.25", "--json"])
    assert refused.exit_code == 1
    (problem,) = json.loads(refused.stdout)["problems"]
    assert problem["reason"] == f"file too large: {size} bytes, above the limit of 262144 bytes (0.25 MB); raise it with --max-file-mb"
    assert runner.invoke(app, ["validate", str(tmp_path), "--max-file-mb", "1"]).exit_code == 0
    assert "--max-file-mb" in runner.invoke(app, ["index", "--help"]).stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "RAG_MAX_BODY_BYTES must be a whole number of bytes, got 'abc'"), ("0", "RAG_MAX_BODY_BYTES must be above zero, got 0")],
)
def test_a_bad_environment_value_is_named_cleanly_by_serve(tmp_path, value, message):
    result = runner.invoke(app, ["serve", "--index-dir", str(tmp_path)], env={"RAG_MAX_BODY_BYTES": value})
    assert (result.exit_code, result.stderr.strip()) == (2, f"error: {message}")


def test_a_taken_port_fails_at_once_naming_port_before_anything_loads(tmp_path):
    """`make run` twice: the second server says the port is taken and how to choose another (issue 28), and prints no
    "ready" line (only the server that listens prints it, from its own start-up)."""
    import socket

    from rag.cli.serving import port_taken

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_taken("127.0.0.1", port)
        result = runner.invoke(app, ["serve", "--index-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use (Address already in use); stop that server, or choose another port: "
        f"`PORT={port + 1} make run` or `rag serve --port {port + 1}`"
    )
    assert "ready;" not in result.stderr
    assert port_taken("127.0.0.1", port) is None  # free again once the holder closed


def test_eval_without_ranx_says_which_extra_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ranx" else real(name, *a))
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"qid": "1", "query": "stock", "relevant": {"a": 1}}\n')
    result = runner.invoke(app, ["eval", str(queries), "--index-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "`rag eval` needs ranx, in the package's eval extra: run `.venv/bin/pip install -e '.[eval]'`" in result.stderr
