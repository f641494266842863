"""MCP tools over the same service as the HTTP API, with the official `mcp` SDK (v2 `MCPServer`).

Read-only tools: search_patterns, get_pattern, related_patterns, list_facets, context_pack. Each answers twice,
from one record (`rag.serve.lean`): as compact text a model reads (one line per hit, each passage under its
citation), since many hosts pass only the text on, and as compact structured content for programs (no nulls or
empty fields, no indentation). No output schema is published: the schemas of the HTTP models cost agents about
6,000 tokens of every tool list (the descriptions name the shapes).

Arguments are strict: an unknown argument, or a value of the wrong type (k: "5", k: true), is refused with an
error naming every argument the tool takes and its type; a value out of range, as a sentence naming the range.
Bad values (an unknown domain, a slug that names nothing) become a tool error naming the field.

Transports: stdio (`rag mcp`, see `run_stdio`) and streamable HTTP, mounted on the API at /mcp by
`rag.api.app`. The tools read the state through a callable, so an API reload is seen at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict, Field, ValidationError

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
    "Cite passages by their slug#section ids. Valid filter values come from list_facets. Structured answers omit "
    "empty fields: an absent field is none or false."
)
READ_ONLY = ToolAnnotations(read_only_hint=True)  # the other hints only mean something when this is false
PACK_FRAMING_TOKENS = 160  # what a context_pack result adds to its passages, in each form, at most: the SDK's
# envelope and serverInfo stamp, the index version, the counts and floor, the header line (tests/integration/test_mcp.py)
_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false", "array": "a list of strings"}

Query = Annotated[str, Field(max_length=MAX_QUERY_CHARS, description="A situation in plain words, or a pattern's name.")]
Slug = Annotated[str, Field(description="A pattern slug from search_patterns.")]
Domain = Annotated[str | None, Field(description="Filter: a domain.")]
ContextName = Annotated[str | None, Field(description="Filter: a reader's context (list_facets); hits carry its label.")]
Status = Annotated[str | None, Field(description="Filter: a lifecycle status.")]
MinConfidence = Annotated[float | None, Field(ge=0, le=1, description="Filter: lowest confidence (1 = five stars).")]


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
        offset: Annotated[int, Field(ge=0, le=MAX_K - 1, description="Hits to skip (the next page: next_offset).")] = 0,
        domain: Domain = None,
        context: ContextName = None,
        status: Status = None,
        min_confidence: MinConfidence = None,
        group_duplicates: Annotated[bool, Field(description="Fold near-duplicates under the best hit.")] = False,
        reader: Annotated[str | None, Field(description="Rank and label for this context, not filtering.")] = None,
    ) -> CallToolResult:
        """Patterns that fit a situation, best first (text: one line per hit). Structured: {next_offset?, no_good_match?,
        hits: [{slug, title, summary, relevance (0-1), pinned?, cite, snippet}]}; cite is slug#section."""
        with _as_tool_errors():
            request = SearchRequest(query, k, offset, Filters(domain, context, status, min_confidence), group_duplicates, reader)
            return _answer(*lean.search_answer(service.search(get_state(), request), analyze(query)))

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
        """Cited passages [{cite, text}] within budget_tokens (+160 framing), Solution and Problem first, only from
        patterns with relevance >= relevance_floor."""
        with _as_tool_errors():
            pack = service.context_pack(get_state(), query, budget_tokens, Filters(domain, context, status, min_confidence), patterns)
            return _answer(*lean.pack_answer(pack))

    tools = [
        _strict(Tool.from_function(fn, description=_one_line(fn.__doc__), annotations=READ_ONLY))
        for fn in (search_patterns, get_pattern, related_patterns, list_facets, context_pack)
    ]
    return _StrictServer("pattern-rag", version=__version__, instructions=INSTRUCTIONS, tools=tools)


def _one_line(doc: str | None) -> str:
    """A docstring as one line: the line breaks and indentation of source code cost an agent tokens."""
    return " ".join((doc or "").split())


# -- strict arguments -----------------------------------------------------------------------------
def _strict(tool: Tool) -> Tool:
    """`tool` with an argument model that refuses unknown arguments and coerces nothing ("5" is not 5, true is not 1)."""
    loose = tool.fn_metadata.arg_model
    strict = type(loose.__name__, (loose,), {"model_config": ConfigDict(extra="forbid", strict=True), "__module__": __name__})
    return tool.model_copy(
        update={
            "fn_metadata": tool.fn_metadata.model_copy(update={"arg_model": strict}),
            "parameters": lean.tool_schema(strict.model_json_schema(by_alias=True)),
        }
    )


class _StrictServer(MCPServer):
    """An MCPServer whose argument errors read as sentences: what was wrong, and what the tool takes."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            tool = self._tool_manager.get_tool(name)
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError) or tool is None:
                raise
            raise ToolError(f"Error executing tool {name}: {argument_errors(name, tool.parameters, cause)}") from cause


def argument_errors(name: str, schema: dict, error: ValidationError) -> str:
    """The validation errors of one call as sentences; unknown arguments and wrong types also list what `name` takes."""
    props = schema.get("properties", {})
    said: dict[str, str] = {}
    signature = False
    for err in error.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else ""
        if field in said:  # a union (a type or null) reports once per member
            continue
        kind, given = err["type"], err.get("input")
        prop = props.get(field, {})
        if kind == "extra_forbidden":
            said[field], signature = f"unknown argument {field!r}", True
        elif kind == "missing":
            said[field], signature = f"{field} is required", True
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            said[field] = f"{field} must be {_range(prop)}, got {given!r}"
        elif kind == "string_too_long":
            said[field] = f"{field} must be at most {prop.get('maxLength')} characters long, got {len(given)}"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            said[field], signature = f"{field} must be {_expected(prop)}, got {_described(given)}", True
        else:
            said[field] = f"{field}: {err['msg']}"
    text = "; ".join(said.values()) + "."
    if signature:
        text += f" {name} takes: {arguments_text(schema)}."
    return text


def arguments_text(schema: dict) -> str:
    """Every argument of a tool schema with its type, range and default: `k (integer 1-100, default 5)`."""
    required = set(schema.get("required", ()))
    parts = []
    for field, prop in schema.get("properties", {}).items():
        about = [prop.get("type", "any")]
        if "minimum" in prop or "maximum" in prop:
            about[0] += f" {prop.get('minimum', '')}-{prop.get('maximum', '')}"
        if field in required:
            about.append("required")
        elif "default" in prop:
            about.append(f"default {prop['default']!r}".replace("False", "false").replace("'", '"'))
        parts.append(f"{field} ({', '.join(about)})")
    return ", ".join(parts) or "no arguments"


def _range(prop: dict) -> str:
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _expected(prop: dict) -> str:
    kinds = [_TYPES.get(o.get("type", ""), o.get("type", "")) for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    return " or ".join(kinds) + (" (or null)" if any(o.get("type") == "null" for o in prop.get("anyOf", [])) else "")


def _described(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)
