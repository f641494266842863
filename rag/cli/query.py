"""`rag search`, `show`, `related`, `similar`: read a built index."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import (
    ContextOpt,
    DomainOpt,
    IndexDir,
    JsonFlag,
    MinConfidenceOpt,
    Slug,
    StatusOpt,
    load_state,
    print_json,
    run,
)


def search(
    query: Annotated[str, typer.Argument(help="A situation in plain words, or a pattern's name.")],
    domain: DomainOpt = None,
    context: ContextOpt = None,
    status: StatusOpt = None,
    min_confidence: MinConfidenceOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of patterns.")] = 10,
    offset: Annotated[
        int, typer.Option("--offset", help="Skip this many hits first (the next page: --offset 10); offset + k is at most 100.")
    ] = 0,
    group_duplicates: Annotated[
        bool, typer.Option("--group-duplicates", help="Fold near-duplicate patterns under the best one (listed as 'also').")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each retriever's rank and raw score per hit, and the fusion weights.")
    ] = False,
    reader: Annotated[
        str | None, typer.Option("--reader", help="Rank and label for this context without filtering (see `rag facets`).")
    ] = None,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="RAG_SERVER",
            show_envvar=False,
            help="Ask a running `rag serve` at this URL (default $RAG_SERVER) instead of opening --index-dir; loads no model.",
        ),
    ] = None,
) -> None:
    """Search the index: per hit its title, relevance (0-1), slug, best-matching section and snippet; says when nothing fits."""
    from rag.cli.render import search_lines, width

    if server:  # the server's JSON is what a local --json prints; its Results render as local ones do
        from rag.cli import remote

        filters = {"domain": domain, "context": context, "status": status, "min_confidence": min_confidence}
        request = {
            "query": query,
            "k": k,
            "offset": offset,
            "filters": {key: v for key, v in filters.items() if v is not None},
            "group_duplicates": group_duplicates,
            "reader": reader,
            "explain": explain or as_json,
        }
        answer = remote.search(server, request)
        if as_json:
            print_json(answer)
            return
        results = remote.results(server, answer)
    else:
        from rag.records.filters import Filters
        from rag.records.request import SearchRequest
        from rag.serve import service
        from rag.serve.wire import SearchResponse

        state = load_state(index_dir)
        results = run(
            lambda: service.search(
                state, SearchRequest(query, k, offset, Filters(domain, context, status, min_confidence), group_duplicates, reader)
            )
        )
        if as_json:
            print_json(SearchResponse.of(results, explain=True).model_dump(mode="json"))
            return
    typer.echo("\n".join(search_lines(results, width(), offset, explain)))
    if not results.hits:
        typer.echo(
            "no patterns match these filters" if results.filters and any(results.filters.values()) else "no patterns match", err=True
        )


def show(
    slug: Slug,
    context: ContextOpt = None,
    markdown: Annotated[
        bool | None,
        typer.Option(
            "--markdown/--rendered",
            help="Print the Markdown as written, or rendered to the terminal's width (default: rendered on a terminal, Markdown "
            "when piped).",
        ),
    ] = None,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """Print one whole pattern (optionally seen from one context), rendered for the terminal or as Markdown."""
    found = name = label = None
    version = None
    if context is None:  # the fast path: the one pattern's row, nothing else loaded (issue 14: `rag show` under 2 s)
        from rag.index.search_index import read_pattern

        manifest, found = run(lambda: read_pattern(index_dir, slug))
        version = manifest.build_id
    if found is None:  # a context to check, or a slug to suggest names for: the whole index
        from rag.serve import service

        state = load_state(index_dir)
        found, name, label = run(lambda: service.pattern(state, slug, context))
        version = state.version
    if as_json:
        from rag.serve.wire import PatternResponse

        print_json(PatternResponse.of(version, found, name, label).model_dump(by_alias=True))
        return
    lines = [
        f"# {found.title}",
        "",
        f"`{found.slug}` · domains: {', '.join(found.domains) or '-'} · status: {found.lifecycle.status or '-'}",
    ]
    if name:
        lines += ["", f"**In {name} terms:** {label or '(no label for this context)'}"]
    if found.summary:
        lines += ["", found.summary]
    if found.tension:
        lines += ["", f"**Tension:** {found.tension}"]
    for section in found.sections:
        lines += ["", f"{'#' * max(2, min(section.level, 4))} {section.title}", "", section.text.strip()]
    terminal = sys.stdout.isatty()
    if markdown or (markdown is None and not terminal):
        typer.echo("\n".join(lines))
        return
    from rag.cli.render import rendered_markdown, width

    typer.echo(rendered_markdown("\n".join(lines), width(), terminal))


def related(slug: Slug, as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """Curated relationships of a pattern, both directions, heaviest first, one line per related pattern with all its
    relations; targets outside the library are listed."""
    from rag.cli.render import related_lines, width
    from rag.serve import service
    from rag.serve.wire import RelatedResponse

    state = load_state(index_dir)
    found, edges = run(lambda: service.related(state, slug))
    dangling = state.graph.dangling_of(found.slug)
    if as_json:
        print_json(RelatedResponse.of(state.version, found, edges, dangling).model_dump())
        return
    typer.echo("\n".join(related_lines(found.slug, edges, dangling, width())))


def similar(
    slug: Slug,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of patterns.")] = 10,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """More like this: the patterns nearest to one pattern's content."""
    from rag.serve import service
    from rag.serve.wire import SimilarResponse

    state = load_state(index_dir)
    found, nearest = run(lambda: service.more_like(state, slug, k))
    if as_json:
        print_json(SimilarResponse.of(state.version, found, nearest).model_dump())
        return
    from rag.cli.render import similar_lines, width

    typer.echo("\n".join(similar_lines(found.slug, nearest, width())))
