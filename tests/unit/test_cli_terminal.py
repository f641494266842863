"""The CLI at 80 columns (typer's CliRunner, COLUMNS=80) on patterns/ indexed with the fake encoder:
five hits fit one screen, prose wraps, slugs and titles never do; browse, facets and context packs."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from rag.cli import common as cli_common
from rag.cli.app import app
from rag.index.search_index import SearchIndex
from support import SHELVES

SCREEN = 30  # lines of one screen, the budget of a five-hit search


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, fake_encoder):
    monkeypatch.setattr(cli_common, "encoder", lambda: fake_encoder)
    monkeypatch.setattr(cli_common, "query_encoder", lambda: fake_encoder)


@pytest.fixture
def rag(fake_index_dir):
    runner = CliRunner()

    def invoke(*args: str, index: bool = True):
        result = runner.invoke(app, [*args, *(["--index-dir", str(fake_index_dir)] if index else [])], env={"COLUMNS": "80"})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def lines_of(text: str) -> list[str]:
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, [line for line in lines if len(line) > 80]
    return lines


@pytest.mark.parametrize("extra", [(), ("--context", "corporate")])
def test_five_hits_fit_one_screen_and_never_wrap_a_slug_or_title(rag, fake_index_dir, extra):
    result = rag("search", SHELVES, "-k", "5", *extra)
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert len(lines) <= SCREEN + (2 if extra else 0)
    hits = json.loads(rag("search", SHELVES, "-k", "5", "--json", *extra).stdout)["hits"]
    assert len(hits) == 5
    for n, hit in enumerate(hits, start=1):
        assert any(line.startswith(f"{n:>2}  {hit['title']}  ") for line in lines), hit["title"]
        assert any(line.startswith(f"    {hit['slug']}") for line in lines), hit["slug"]
    if extra:
        assert sum(line.startswith("    corporate: ") for line in lines) == 5


def test_explain_shows_each_retrievers_rank_and_offset_pages_on(rag):
    first = rag("search", SHELVES, "-k", "4", "--json").stdout
    slugs = [h["slug"] for h in json.loads(first)["hits"]]
    result = rag("search", SHELVES, "-k", "2", "--offset", "2", "--explain")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert lines[0] == f"hits 3-4 for {SHELVES!r}"
    assert any(line.startswith("fusion: learned (dense 1") for line in lines)
    assert [line.strip().split(" · ")[0] for line in lines if line.strip().split(" · ")[0] in slugs] == slugs[2:4]
    assert any(line.startswith("    ") and "dense #" in line for line in lines)


def test_min_confidence_and_group_duplicates_reach_the_search(rag, fake_index_dir):
    patterns = SearchIndex.open(fake_index_dir).patterns
    confident = {p.slug for p in patterns if (p.lifecycle.confidence or 0) >= 0.8}
    body = json.loads(rag("search", SHELVES, "-k", "20", "--min-confidence", "0.8", "--group-duplicates", "--json").stdout)
    assert body["filters"]["min_confidence"] == 0.8
    assert {h["slug"] for h in body["hits"]} <= confident
    assert rag("search", SHELVES, "--min-confidence", "1.5").exit_code == 2


def test_facets_lists_the_index_own_values(rag, fake_index_dir):
    result = rag("facets")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    contexts = sorted({c for p in SearchIndex.open(fake_index_dir).patterns for c in p.contexts})
    block = lines[lines.index(f"contexts ({len(contexts)})") + 1]
    assert sorted(item.rsplit(" ", 1)[0] for item in block.strip().split(" · ")) == contexts
    assert json.loads(rag("facets", "--json").stdout)["contexts"]


def test_list_pages_with_total_and_next_offset(rag, fake_index_dir):
    total = len(SearchIndex.open(fake_index_dir).patterns)
    result = rag("list", "--limit", "5", "--offset", "5")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert lines[0].startswith(f"patterns 6-10 of {total} · index ")
    assert lines[-1] == "more: --offset 10"
    body = json.loads(rag("list", "--domain", "finance", "--limit", "200", "--json").stdout)
    assert body["total"] == len(body["patterns"]) > 0 and body["next_offset"] is None
    bad = rag("list", "--domain", "astrology")
    assert bad.exit_code == 2 and "error: domain: unknown domain 'astrology'" in bad.stderr


def test_context_prints_a_cited_pack_within_its_budget(rag):
    result = rag("context", SHELVES, "--budget", "600", "--patterns", "3")
    assert result.exit_code == 0, result.output
    assert "#" in result.stdout and "pull-based-replenishment#" in result.stdout
    lines_of(result.stdout)  # paragraphs wrapped at 80 columns
    tokens, budget = result.stderr.split(" tokens")[0].split(" of ")
    assert int(tokens) <= int(budget) == 600
    body = json.loads(rag("context", SHELVES, "--budget", "600", "--json").stdout)
    assert body["budget_tokens"] == 600 and body["passages"]
    # the pack's relevance floor, stated on stderr and in the JSON (issue 28)
    assert 0 < body["relevance_floor"] < 1 and {p["slug"] for p in body["passages"]}.isdisjoint(body["below_floor"])
    assert f"only patterns with relevance at least {body['relevance_floor']:.2f} (" in " ".join(result.stderr.split())


def test_help_texts_point_to_facets_and_fit_80_columns(rag):
    for command in ("search", "list", "context", "facets"):
        result = rag(command, "--help", index=False)
        assert result.exit_code == 0
        lines_of(result.stdout)
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", rag("search", "--help", index=False).stdout).split())
    assert "come from `rag facets`" in text
    assert "community" not in text and "activist" not in text  # no fixed list of contexts
    top = rag("--help", index=False).stdout
    for command in ("facets", "list", "context", "search", "validate", "index"):
        assert f" {command} " in top


def test_show_renders_the_markdown_at_the_terminal_width(rag, fake_index_dir):
    """Issue 28: `rag show` at 80 columns: wrapped, no raw Markdown markup; piped, it is the Markdown as written."""
    rendered = rag("show", "time-banking", "--rendered")
    assert rendered.exit_code == 0, rendered.output
    lines = lines_of(rendered.stdout)  # none wider than 80
    assert lines[:2] == ["Time Banking", "═" * len("Time Banking")]
    assert not any("**" in line or line.startswith("#") for line in lines)
    assert "Tension: Market prices that value some people's time far above others vs. Every" in lines
    for heading in ("Context", "Problem", "Solution", "Known Uses"):
        at = lines.index(heading)
        assert lines[at + 1] == "─" * len(heading)
    piped = rag("show", "time-banking")  # CliRunner is no terminal: the Markdown, as `--markdown` prints it
    assert piped.stdout == rag("show", "time-banking", "--markdown").stdout
    assert piped.stdout.startswith("# Time Banking\n") and "**Tension:** Market prices" in piped.stdout


def test_similar_never_breaks_a_title_or_a_slug(rag):
    result = rag("similar", "time-banking", "-k", "5")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    nearest = json.loads(rag("similar", "time-banking", "-k", "5", "--json").stdout)["similar"]
    assert lines[0] == "5 patterns similar to time-banking" and len(lines) == 1 + 2 * 5
    for rank, s in enumerate(nearest, start=1):
        title_line, slug_line = lines[2 * rank - 1], lines[2 * rank]
        assert title_line.startswith(f"{rank:>2}  {s['title']}  ") and title_line.endswith(f"{s['score']:.3f}")
        assert slug_line == f"    {s['slug']} · closest: {s['chunk_id'].split('#')[1]}"


def test_related_lists_each_target_once_with_all_its_relations(rag):
    result = rag("related", "pull-based-replenishment")
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    edges = json.loads(rag("related", "pull-based-replenishment", "--json").stdout)["related"]
    targets = list(dict.fromkeys(e["slug"] for e in edges))
    assert len(edges) > len(targets)  # small-batch-delivery is both enabled and complementary
    assert [line.split(":")[0].strip() for line in lines if line.startswith("  ")] == targets
    small = next(line for line in lines if line.startswith("  small-batch-delivery:"))
    assert small.startswith("  small-batch-delivery: → enables 0.75, ← complementary 0.75")
