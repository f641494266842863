"""docs/python.md's examples run as written, against an index of patterns/ in `./index` and a `rag serve` of it
(the examples' http://127.0.0.1:8000 is the test server's free port), and print what they promise."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from bench.loadgen import serve_in_thread
from rag.config import Settings
from rag.serve.http import create_app
from support import REPO

DOC = REPO / "docs" / "python.md"
EXAMPLES = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
DOCUMENTED_URL = "http://127.0.0.1:8000"
# what each example prints, in order: the in-process API, the client, LangChain, LlamaIndex
PRINTS = [
    (
        "1 pull-based-replenishment 0.",
        "pull-based-replenishment#",
        "Pull-Based Replenishment | ",
        "('enables', 'small-batch-delivery')",
        "'pull-based-",
    ),
    ("pull-based-replenishment 0.", "| Restocking", "domain ['community', 'finance', 'governance', 'operations', 'people', 'technology']"),
    ("pull-based-replenishment 0.", "pull-based-replenishment#", "{'domain': 'governance'}"),
    ("pull-based-replenishment 0.", "pull-based-replenishment#"),
]


@pytest.fixture(scope="module")
def server(patterns_index_dir):
    with serve_in_thread(create_app(Settings(index_dir=patterns_index_dir))) as url:
        yield url


def test_the_doc_has_an_example_of_about_ten_lines_for_each_way_in():
    assert len(EXAMPLES) == len(PRINTS) == 4
    assert [("open_index" in e, "rag.Client" in e, "langchain" in e, "llamaindex" in e) for e in EXAMPLES] == [
        (True, False, False, False),
        (False, True, False, False),
        (True, False, True, False),
        (False, True, False, True),
    ]
    assert all(len(e.strip().splitlines()) <= 12 for e in EXAMPLES)


@pytest.mark.parametrize("number", range(len(PRINTS)), ids=["in-process", "client", "langchain", "llamaindex"])
def test_each_example_runs_and_prints_what_it_promises(number, server, patterns_index_dir, tmp_path, monkeypatch):
    (tmp_path / "index").symlink_to(patterns_index_dir, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(
            compile(EXAMPLES[number].replace(DOCUMENTED_URL, server), f"{DOC}:example {number + 1}", "exec"),
            {"__name__": "__doc_example__"},
        )
    out = printed.getvalue()
    missing = [text for text in PRINTS[number] if text not in out]
    assert not missing, f"example {number + 1} printed:\n{out}\nwithout {missing}"
