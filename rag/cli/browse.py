"""`rag facets`, `rag list` and `rag context`: what an index holds, a page of it, a context pack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import ContextOpt, DomainOpt, IndexDir, JsonFlag, MinConfidenceOpt, StatusOpt, load_state, print_json, run


def facets(as_json: JsonFlag = False, index_dir: IndexDir = Path("index")) -> None:
    """The index's domains, contexts and statuses with pattern counts: the values --domain, --context and --status take."""
    from rag.cli.render import facets_lines, width
    from rag.serve import service
    from rag.serve.wire import FacetsResponse

    state = load_state(index_dir)
    body = FacetsResponse.of(state.version, service.facets(state)).model_dump()
    if as_json:
        print_json(body)
        return
    typer.echo("\n".join(facets_lines(body, width(), state.version)))


def list_(
    domain: DomainOpt = None,
    context: ContextOpt = None,
    status: StatusOpt = None,
    min_confidence: MinConfidenceOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Patterns per page (1 to 200).")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Patterns skipped; the page's last line gives the next offset.")] = 0,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """Browse the patterns passing the filters, in title order, a page at a time, with the total count."""
    from rag.cli.render import list_lines, width
    from rag.records.filters import Filters
    from rag.serve import service
    from rag.serve.wire import PatternListResponse

    state = load_state(index_dir)
    page = run(lambda: service.list_patterns(state, Filters(domain, context, status, min_confidence), limit, offset))
    if as_json:
        print_json(PatternListResponse.of(state.version, page).model_dump())
        return
    typer.echo("\n".join(list_lines(page, width(), state.version)))


def context(
    query: Annotated[str, typer.Argument(help="What the context is for: a situation in plain words.")],
    budget: Annotated[int, typer.Option("--budget", help="Most tokens (model word pieces) in the pack.")] = 2000,
    patterns: Annotated[int, typer.Option("--patterns", help="How many top patterns may contribute passages.")] = 5,
    domain: DomainOpt = None,
    reader: ContextOpt = None,
    status: StatusOpt = None,
    min_confidence: MinConfidenceOpt = None,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """A context pack: the best sections of the top patterns as Markdown, each cited slug#section, within a token budget.

    Only patterns whose relevance clears the pack's floor (the no-good-match threshold) give passages. The Markdown goes
    to stdout (paragraphs wrapped to the terminal; --json has it as built); a one-line account of the budget and the floor
    to stderr."""
    from rag.records.filters import Filters
    from rag.serve import service
    from rag.serve.wire import ContextResponse

    state = load_state(index_dir)
    pack = run(lambda: service.context_pack(state, query, budget, Filters(domain, reader, status, min_confidence), patterns))
    if as_json:
        print_json(ContextResponse.of(pack).model_dump())
        return
    from rag.cli.render import markdown_lines, width

    typer.echo("\n".join(markdown_lines(pack.markdown, width())))
    passages, patterns = len(pack.passages), len(pack.patterns)
    typer.echo(
        f"{pack.tokens} of {pack.budget_tokens} tokens: {passages} passage{'s' if passages != 1 else ''} from {patterns} pattern"
        f"{'s' if patterns != 1 else ''} ({pack.skipped} left out for lack of budget); only patterns with relevance at least"
        f" {pack.relevance_floor:.2f} ({len(pack.below_floor)} below it left out); index {pack.index_version}",
        err=True,
    )
