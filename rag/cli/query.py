"""`rag search`, `show`, `related`, `similar`: read a built index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.common import ContextOpt, IndexDir, JsonFlag, Slug, fail, load_state, new_table, print_json, print_rich, run


def search(
    query: Annotated[str, typer.Argument(help="A situation in plain words, or a pattern's name.")],
    domain: Annotated[Optional[str], typer.Option("--domain", help="Only this domain (see `rag facets` or GET /facets).")] = None,
    context: ContextOpt = None,
    status: Annotated[Optional[str], typer.Option("--status", help="Only this lifecycle status.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of patterns.")] = 10,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """Search the index: rank, slug, title, score and the best-matching section."""
    from rag.serve import service
    from rag.serve.wire import SearchResponse
    from rag.search.filters import Filters

    state = load_state(index_dir)
    results = run(lambda: service.search(state, query, k, Filters(domain, context, status)))
    if as_json:
        print_json(SearchResponse.of(results, explain=True).model_dump())
        return
    columns = ["rank", "slug", "title", "score", "best section"] + (["in context"] if results.filters.get("context") else [])
    table = new_table(f"{query!r} (index {results.index_version})", *columns)
    for h in results.hits:
        best = h.evidence[0].section if h.evidence else ""
        table.add_row(str(h.rank), h.slug, h.title, f"{h.score:.4f}", best, *([h.context_label or ""] if len(columns) > 5 else []))
    print_rich(table)
    if not results.hits:
        typer.echo("no patterns match these filters", err=True)


def show(slug: Slug, context: ContextOpt = None, as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """Print one whole pattern as Markdown (optionally seen from one context)."""
    from rag.serve import service
    from rag.serve.wire import PatternResponse

    state = load_state(index_dir)
    found, name, label = run(lambda: service.pattern(state, slug, context))
    if as_json:
        print_json(PatternResponse.of(state.version, found, name, label).model_dump(by_alias=True))
        return
    lines = [f"# {found.title}", "", f"`{found.slug}` · domains: {', '.join(found.domains) or '-'} · status: {found.lifecycle.status or '-'}"]
    if name:
        lines += ["", f"**In {name} terms:** {label or '(no label for this context)'}"]
    if found.summary:
        lines += ["", found.summary]
    if found.tension:
        lines += ["", f"**Tension:** {found.tension}"]
    for section in found.sections:
        lines += ["", f"{'#' * max(2, min(section.level, 4))} {section.title}", "", section.text.strip()]
    typer.echo("\n".join(lines))


def related(slug: Slug, as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """Curated relationships of a pattern, both directions, heaviest first."""
    from rag.serve import service
    from rag.serve.wire import RelatedResponse

    state = load_state(index_dir)
    found, edges = run(lambda: service.related(state, slug))
    if as_json:
        print_json(RelatedResponse.of(state.version, found, edges).model_dump())
        return
    table = new_table(f"related to {found.slug}", "relation", "direction", "slug", "title", "weight")
    for r in edges:
        table.add_row(r.relation, r.direction, r.slug, r.title, "" if r.weight is None else f"{r.weight:g}")
    print_rich(table)


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
    table = new_table(f"similar to {found.slug}", "rank", "slug", "title", "score", "closest section")
    for rank, s in enumerate(nearest, start=1):
        table.add_row(str(rank), s.slug, s.title, f"{s.score:.3f}", s.chunk_id.split("#", 1)[-1])
    print_rich(table)
