"""`rag validate` for people (issue 28): counts by kind and the first problems of each, every one with --all; file
names never cut; the exit codes as before (1 with an error, else 0)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rag.cli.app import app
from rag.cli.render import EXAMPLES_PER_KIND, problem_kind

runner = CliRunner()


def write(folder, slug: str, related: tuple[str, ...] = (), body: str = "## Problem\n\nText.\n\n## Solution\n\nText.\n") -> None:
    rel = "".join(f"    - {target}\n" for target in related)
    front = f"---\nslug: {slug}\ntitle: {slug.replace('-', ' ').title()}\n" + (f"relationships:\n  enables:\n{rel}" if related else "")
    (folder / f"{slug}.md").write_text(f"{front}---\n\n{body}", encoding="utf-8")


@pytest.fixture
def library(tmp_path):
    for n in range(4):  # 8 dangling relationships, 2 per file
        write(tmp_path, f"a-rather-long-pattern-file-name-number-{n}", (f"ghost-{n}", f"phantom-{n}"))
    write(tmp_path, "no-headings", body="Just prose.\n")
    return tmp_path


def invoke(*args: str):
    return runner.invoke(app, ["validate", *args], env={"COLUMNS": "80"})


def test_problems_are_counted_by_kind_with_the_first_examples(library):
    result = invoke(str(library))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[3] == "33 warnings of 3 kinds:"  # 6 canonical sections missing from each of 4 files, 8 dangling, 1 without sections
    assert any(line.strip() == "8  dangling relationship" for line in lines)
    assert sum("is not in the library" in line for line in lines) == EXAMPLES_PER_KIND
    assert any(line.strip() == f"and {8 - EXAMPLES_PER_KIND} more" for line in lines)
    assert any(line.strip() == "1  no sections" for line in lines)
    # a file name is never cut
    assert "a-rather-long-pattern-file-name-number-0.md" in result.stdout
    assert any(line.strip() == f"and {24 - EXAMPLES_PER_KIND} more" for line in lines)
    hidden = (24 - EXAMPLES_PER_KIND) + (8 - EXAMPLES_PER_KIND)
    assert f"{hidden} problems not shown: `rag validate {library} --all` lists every one" in " ".join(result.stdout.split())


def test_all_lists_every_problem(library):
    result = invoke(str(library), "--all")
    assert result.exit_code == 0
    assert sum("is not in the library" in line for line in result.stdout.splitlines()) == 8
    assert "more" not in result.stdout and "not shown" not in result.stdout
    assert max(map(len, result.stdout.splitlines())) <= 80


def test_an_error_still_exits_1_and_comes_first(library):
    (library / "broken.md").write_text("", encoding="utf-8")
    result = invoke(str(library))
    assert result.exit_code == 1
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines.index("1 error of 1 kind:") < lines.index("33 warnings of 3 kinds:")
    assert "broken.md (file): empty file" in lines


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("dangling relationship: 'x' is not in the library", ("dangling relationship", "'x' is not in the library")),
        ("YAML error at column 3: did not find ','", ("YAML error at column N", "did not find ','")),
        ("missing canonical section 'Vitality'", ("missing canonical section '…'", "missing canonical section 'Vitality'")),
        ("expected a list, got int; ignored", ("expected a list, got int", "expected a list, got int; ignored")),
    ],
)
def test_the_kind_of_a_problem(reason, kind):
    assert problem_kind(reason) == kind
