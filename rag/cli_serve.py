"""CLI commands that read a built index: search, show, related, similar, serve, mcp.

Registered on `rag.cli.app` when `rag.cli` imports this module. Tables for people, `--json` for
programs; logs and progress on stderr (stdout stays clean for `rag mcp`, which speaks MCP over it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import IndexDir, JsonFlag, _fail, _setup_logging, app

Slug = Annotated[str, typer.Argument(help="Pattern slug, e.g. pull-based-replenishment.")]
ContextOpt = Annotated[Optional[str], typer.Option("--context", help="Context (corporate, government, activist, tech, academic, community).")]


@lru_cache(maxsize=1)
def _embedder():
    from .embedding import Embedder

    return Embedder()


def _state(index_dir: Path):
    """The served state of `index_dir`, or a clean exit with the index's own message."""
    from .service import State
    from .store import IndexError_

    try:
        return State.load(index_dir, _embedder())
    except IndexError_ as exc:
        _fail(str(exc))


def _run(call):
    """Run a service call; bad input becomes `error: <field>: <message>` and exit code 2."""
    from .filters import UnknownFilterValue
    from .retriever import QueryError
    from .service import PatternNotFound

    try:
        return call()
    except (QueryError, UnknownFilterValue, PatternNotFound) as exc:
        _fail(f"{exc.field}: {exc}")


def _print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(title: str, *columns: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=name in ("slug", "rank"), overflow="fold")
    return table


def _print(renderable) -> None:
    from rich.console import Console

    Console(soft_wrap=False).print(renderable)


@app.command()
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
    from . import service
    from .api.schemas import SearchResponse
    from .filters import Filters

    state = _state(index_dir)
    results = _run(lambda: service.search(state, query, k, Filters(domain, context, status)))
    if as_json:
        _print_json(SearchResponse.of(results, explain=True).model_dump())
        return
    columns = ["rank", "slug", "title", "score", "best section"] + (["in context"] if results.filters.get("context") else [])
    table = _table(f"{query!r} (index {results.index_version})", *columns)
    for h in results.hits:
        best = h.evidence[0].section if h.evidence else ""
        table.add_row(str(h.rank), h.slug, h.title, f"{h.score:.4f}", best, *([h.context_label or ""] if len(columns) > 5 else []))
    _print(table)
    if not results.hits:
        typer.echo("no patterns match these filters", err=True)


@app.command()
def show(slug: Slug, context: ContextOpt = None, as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """Print one whole pattern as Markdown (optionally seen from one context)."""
    from . import service
    from .api.schemas import PatternResponse

    state = _state(index_dir)
    found, name, label = _run(lambda: service.pattern(state, slug, context))
    if as_json:
        _print_json(PatternResponse.of(state.version, found, name, label).model_dump(by_alias=True))
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


@app.command()
def related(slug: Slug, as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """Curated relationships of a pattern, both directions, heaviest first."""
    from . import service
    from .api.schemas import RelatedResponse

    state = _state(index_dir)
    found, edges = _run(lambda: service.related(state, slug))
    if as_json:
        _print_json(RelatedResponse.of(state.version, found, edges).model_dump())
        return
    table = _table(f"related to {found.slug}", "relation", "direction", "slug", "title", "weight")
    for r in edges:
        table.add_row(r.relation, r.direction, r.slug, r.title, "" if r.weight is None else f"{r.weight:g}")
    _print(table)


@app.command()
def similar(
    slug: Slug,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of patterns.")] = 10,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """More like this: the patterns nearest to one pattern's content."""
    from . import service
    from .api.schemas import SimilarResponse

    state = _state(index_dir)
    found, nearest = _run(lambda: service.more_like(state, slug, k))
    if as_json:
        _print_json(SimilarResponse.of(state.version, found, nearest).model_dump())
        return
    table = _table(f"similar to {found.slug}", "rank", "slug", "title", "score", "closest section")
    for rank, s in enumerate(nearest, start=1):
        table.add_row(str(rank), s.slug, s.title, f"{s.score:.3f}", s.chunk_id.split("#", 1)[-1])
    _print(table)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Port (default 8000).")] = None,
    index_dir: Annotated[Optional[Path], typer.Option("--index-dir", help="Index directory (default index/, or $RAG_INDEX_DIR).")] = None,
) -> None:
    """Serve the HTTP API (and MCP over streamable HTTP at /mcp). Settings also come from RAG_* variables."""
    _setup_logging()
    import uvicorn

    from .api import create_app
    from .config import Settings

    settings = Settings.from_env(index_dir=index_dir, host=host, port=port)
    state = _state(settings.index_dir)
    typer.echo(f"serving index {state.version} on http://{settings.host}:{settings.port} (MCP at /mcp, docs at /docs)", err=True)
    uvicorn.run(create_app(settings, state=state), host=settings.host, port=settings.port, log_level="info")


@app.command()
def mcp(index_dir: IndexDir = Path("index")) -> None:
    """Serve the MCP tools over stdio (for an agent that launches this command)."""
    _setup_logging()
    from .mcp_server import build_mcp

    state = _state(index_dir)
    build_mcp(lambda: state).run("stdio")
