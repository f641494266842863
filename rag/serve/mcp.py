"""MCP tools over the same service as the HTTP API, with the official `mcp` SDK (v2 `MCPServer`).

Read-only tools: search_patterns, get_pattern, related_patterns, list_facets, context_pack. Each has
typed arguments and answers with compact structured content and one short text line (`rag.serve.lean`:
no nulls or empty fields, no indentation); no output schema is published, since the schemas of the HTTP
models cost agents about 6,000 tokens of every tool list (the shapes are named in each description).
Bad input becomes a tool error naming the field.

Transports: stdio (`rag mcp`, see `run_stdio`) and streamable HTTP, mounted on the API at /mcp by
`rag.api.app`. The tools read the state through a callable, so an API reload is seen at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from rag import __version__
from rag.errors import RagError
from rag.index.lexical import analyze
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.search.context import MAX_BUDGET, MAX_PATTERNS, MIN_BUDGET
from rag.serve import lean, service
from rag.serve.state import State
from rag.serve.wire import MAX_K, MAX_QUERY_CHARS, FacetsResponse, RelatedResponse

INSTRUCTIONS = (
    "Search a library of organisational patterns (problem/solution write-ups). Start with search_patterns "
    "(describe the situation in plain words), read one with get_pattern (ask only the sections you need), "
    "explore with related_patterns, and use context_pack to get citable passages that fit a token budget. "
    "Cite passages by their slug#section ids. Valid filter values come from list_facets. Answers omit "
    "empty fields: an absent field is none or false."
)
READ_ONLY = ToolAnnotations(read_only_hint=True)  # the other hints only mean something when this is false
PACK_FRAMING_TOKENS = 160  # what a context_pack result adds to its passages, at most: the SDK's envelope and
# serverInfo stamp (97), the index version and counts, the text line (bmn: 150; tests/integration/test_mcp.py)

Query = Annotated[str, Field(max_length=MAX_QUERY_CHARS, description="A situation in plain words, or a pattern's name.")]
Slug = Annotated[str, Field(description="A pattern slug from search_patterns.")]
Domain = Annotated[str | None, Field(description="Filter: a domain.")]
ContextName = Annotated[str | None, Field(description="A reader's context, e.g. activist (list_facets); hits carry its label.")]
Status = Annotated[str | None, Field(description="Filter: a lifecycle status.")]
MinConfidence = Annotated[float | None, Field(ge=0, le=1, description="Filter: lowest confidence, 0-1 (1 = five stars).")]


def _answer(structured: dict, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


@contextlib.contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Every deliberate error (bad input, unknown slug, index or engine trouble) as a tool error naming the field."""
    try:
        yield
    except RagError as exc:
        raise ToolError(f"{exc.field}: {exc}" if exc.field else str(exc)) from None


def build_mcp(get_state: Callable[[], State]) -> MCPServer:
    """An MCPServer whose tools answer from `get_state()` (called once per tool call)."""

    def search_patterns(
        query: Query,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Number of patterns.")] = 5,
        domain: Domain = None,
        context: ContextName = None,
        status: Status = None,
        min_confidence: MinConfidence = None,
        group_duplicates: Annotated[bool, Field(description="Fold near-duplicates under the best hit.")] = False,
        reader: Annotated[str | None, Field(description="Rank and label for this context without filtering.")] = None,
    ) -> CallToolResult:
        """Patterns that fit a situation, best first: {index_version, no_good_match?, hits: [{slug, title, relevance (0-1),
        pinned?, evidence: [{cite, snippet}]}]}; get_pattern for more."""
        with _as_tool_errors():
            results = service.search(
                get_state(), SearchRequest(query, k, 0, Filters(domain, context, status, min_confidence), group_duplicates, reader)
            )
            return _answer(*lean.search_answer(results, analyze(query)))

    def get_pattern(
        slug: Slug,
        sections: Annotated[
            list[str] | None, Field(description='Only these sections, e.g. ["solution", "problem"]; [] for none; default all.')
        ] = None,
        context: ContextName = None,
    ) -> CallToolResult:
        """One pattern: summary, domains, tension, lifecycle, relationships {kind: [slug]}, contexts (labels with context)
        and sections [{cite, title, text}]."""
        with _as_tool_errors():
            state = get_state()
            found, name, label = service.pattern(state, slug, context)
            return _answer(*lean.pattern_answer(state.version, found, name, label, sections))

    def related_patterns(
        slug: Slug,
        similar: Annotated[int, Field(ge=0, le=service.MAX_SIMILAR, description="Also this many nearest by content.")] = 0,
    ) -> CallToolResult:
        """A pattern's curated relationships, both directions: {related: [{slug, title, relation, direction}], similar}."""
        with _as_tool_errors():
            state = get_state()
            found, edges = service.related(state, slug)
            nearest = service.more_like(state, slug, similar)[1] if similar else ()
            return _answer(*lean.related_answer(RelatedResponse.of(state.version, found, edges), nearest))

    def list_facets() -> CallToolResult:
        """Valid filter values with pattern counts: {domains, contexts, statuses}."""
        state = get_state()
        return _answer(*lean.facets_answer(FacetsResponse.of(state.version, service.facets(state))))

    def context_pack(
        query: Query,
        budget_tokens: Annotated[int, Field(ge=MIN_BUDGET, le=MAX_BUDGET, description="Most tokens of passages.")] = 2000,
        patterns: Annotated[int, Field(ge=1, le=MAX_PATTERNS, description="Top patterns that may contribute.")] = 5,
        domain: Domain = None,
        context: ContextName = None,
        status: Status = None,
        min_confidence: MinConfidence = None,
    ) -> CallToolResult:
        """Passages [{cite, text}] of the best patterns within budget_tokens (+160 framing): Solution and Problem first,
        then Implementation and Consequences."""
        with _as_tool_errors():
            pack = service.context_pack(get_state(), query, budget_tokens, Filters(domain, context, status, min_confidence), patterns)
            return _answer(*lean.pack_answer(pack))

    tools = []
    for fn in (search_patterns, get_pattern, related_patterns, list_facets, context_pack):
        tool = Tool.from_function(fn, annotations=READ_ONLY)
        tools.append(tool.model_copy(update={"parameters": lean.tool_schema(tool.parameters)}))
    return MCPServer("pattern-rag", version=__version__, instructions=INSTRUCTIONS, tools=tools)
