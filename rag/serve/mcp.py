"""MCP tools over the same service as the HTTP API, with the official `mcp` SDK (v2 `MCPServer`).

Read-only tools: search_patterns, get_pattern, related_patterns, list_facets, context_pack. Each has
typed arguments and returns a pydantic model (the SDK publishes its JSON schema as the tool's output
schema and sends structured content). Bad input becomes a tool error naming the field.

Transports: stdio (`rag mcp`, see `run_stdio`) and streamable HTTP, mounted on the API at /mcp by
`rag.api.app`. The tools read the state through a callable, so an API reload is seen at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from rag import __version__
from rag.serve import service
from rag.serve.wire import MAX_K, MAX_QUERY_CHARS, ContextResponse, FacetsResponse, PatternResponse, RelatedResponse, SearchResponse, SimilarOut
from rag.search.context import MAX_BUDGET, MAX_PATTERNS, MIN_BUDGET
from rag.search.filters import Filters
from rag.errors import RagError
from rag.serve.service import State

INSTRUCTIONS = (
    "Search a library of organisational patterns (problem/solution write-ups). Start with search_patterns "
    "(describe the situation in plain words), read one with get_pattern, explore with related_patterns, "
    "and use context_pack to get citable passages that fit a token budget. Cite passages by their "
    "slug#section ids. Valid filter values come from list_facets."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

Query = Annotated[str, Field(max_length=MAX_QUERY_CHARS, description="A situation in plain words, or a pattern's name.")]
Slug = Annotated[str, Field(description="A pattern slug, as returned by search_patterns (e.g. 'pull-based-replenishment').")]
Domain = Annotated[str | None, Field(description="Only patterns of this domain (see list_facets).")]
ContextName = Annotated[str | None, Field(description="A context (see list_facets): corporate, government, activist, tech, academic or community.")]
Status = Annotated[str | None, Field(description="Only patterns with this lifecycle status (see list_facets).")]
MinConfidence = Annotated[float | None, Field(ge=0, le=1, description="Lowest confidence, 0-1 (1.0 = five stars).")]


class RelatedPatternsResult(RelatedResponse):
    similar: list[SimilarOut] = Field(default_factory=list, description="Nearest patterns by content (when similar > 0).")


@contextlib.contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Every deliberate error (bad input, unknown slug, index or engine trouble) as a tool error naming the field."""
    try:
        yield
    except RagError as exc:
        raise ToolError(f"{exc.field}: {exc}" if exc.field else str(exc)) from None


def build_mcp(get_state: Callable[[], State]) -> MCPServer:
    """An MCPServer whose tools answer from `get_state()` (called once per tool call)."""
    mcp = MCPServer("pattern-rag", version=__version__, instructions=INSTRUCTIONS)

    @mcp.tool(annotations=READ_ONLY)
    def search_patterns(
        query: Query,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Number of patterns.")] = 5,
        domain: Domain = None,
        context: ContextName = None,
        status: Status = None,
        min_confidence: MinConfidence = None,
        group_duplicates: Annotated[bool, Field(description="Fold near-duplicates under the best hit.")] = False,
    ) -> SearchResponse:
        """Find the patterns that fit a situation, best first, each with the sections that matched (citable as slug#section)."""
        with _as_tool_errors():
            state = get_state()
            results = service.search(state, query, k, Filters(domain, context, status, min_confidence), group_duplicates)
            return SearchResponse.of(results)

    @mcp.tool(annotations=READ_ONLY)
    def get_pattern(slug: Slug, context: ContextName = None) -> PatternResponse:
        """One whole pattern: summary, context labels, domains, tension, lifecycle, relationships and every section."""
        with _as_tool_errors():
            state = get_state()
            found, name, label = service.pattern(state, slug, context)
            return PatternResponse.of(state.version, found, name, label)

    @mcp.tool(annotations=READ_ONLY)
    def related_patterns(
        slug: Slug,
        similar: Annotated[int, Field(ge=0, le=service.MAX_SIMILAR, description="Also list this many patterns nearest by content.")] = 0,
    ) -> RelatedPatternsResult:
        """A pattern's curated relationships, both directions (typed and weighted), and optionally its nearest patterns by content."""
        with _as_tool_errors():
            state = get_state()
            found, edges = service.related(state, slug)
            result = RelatedPatternsResult.model_validate(RelatedResponse.of(state.version, found, edges).model_dump())
            if similar:
                _, nearest = service.more_like(state, slug, similar)
                result.similar = [SimilarOut.model_validate(s, from_attributes=True) for s in nearest]
            return result

    @mcp.tool(annotations=READ_ONLY)
    def list_facets() -> FacetsResponse:
        """Valid filter values (domains, contexts, statuses), each with its number of patterns."""
        state = get_state()
        return FacetsResponse.of(state.version, service.facets(state))

    @mcp.tool(annotations=READ_ONLY)
    def context_pack(
        query: Query,
        budget_tokens: Annotated[int, Field(ge=MIN_BUDGET, le=MAX_BUDGET, description="Most tokens (model word pieces) in the Markdown.")] = 2000,
        patterns: Annotated[int, Field(ge=1, le=MAX_PATTERNS, description="How many top patterns may contribute passages.")] = 5,
        domain: Domain = None,
        context: ContextName = None,
        status: Status = None,
        min_confidence: MinConfidence = None,
    ) -> ContextResponse:
        """The best sections of the best patterns for a query, within a token budget, as Markdown and as passages citable by slug#section."""
        with _as_tool_errors():
            pack = service.context_pack(get_state(), query, budget_tokens, Filters(domain, context, status, min_confidence), patterns)
            return ContextResponse.of(pack)

    return mcp

