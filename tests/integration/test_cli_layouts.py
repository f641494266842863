"""The CLI at 80 columns on a real library (issue 28): `rag validate` on bmn fits a screen and a half."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rag.cli.app import app
from support import CORPORA

BMN = CORPORA / "bmn"


@pytest.mark.corpora
@pytest.mark.skipif(not BMN.is_dir(), reason="needs ../shared/corpora/bmn")
def test_validate_on_bmn_is_at_most_40_lines_and_all_lists_every_problem():
    runner = CliRunner()
    short = runner.invoke(app, ["validate", str(BMN)], env={"COLUMNS": "80"})
    every = runner.invoke(app, ["validate", str(BMN), "--all"], env={"COLUMNS": "80"})
    assert short.exit_code == every.exit_code == 0  # warnings only
    lines = short.stdout.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 80
    assert "178 warnings of 2 kinds:" in lines and "  176  dangling relationship" in lines
    assert " ".join(every.stdout.split()).count("is not in the library") == 158  # and 18 names of several patterns
    assert max(map(len, every.stdout.splitlines())) <= 80
