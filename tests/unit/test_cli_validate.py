"""`rag validate` through typer's CliRunner: exit codes, JSON on stdout, the human table."""

from __future__ import annotations

import json
from pathlib import Path

from support import front_matter, write_pattern
from typer.testing import CliRunner

from rag.cli.app import app

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
            {"path": "bad.md", "location": "line 1", "reason": "no front matter: the file must start with a '---' line", "severity": "error"},
            {"path": "misnamed.md", "location": "field slug", "reason": "slug 'other' differs from the file name 'misnamed'", "severity": "warning"},
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
