"""What a face asks of search: one record for every face (HTTP, MCP, CLI, the Python API, the micro-batcher).

A face builds it from its own input (the HTTP API from its pydantic body, the CLI from options) and hands it to
`Retriever.prepare`, the one place where it is checked against the index (lengths, ranges, filter values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.records.filters import Filters


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 10  # hits to return, after `offset`
    offset: int = 0  # hits skipped first (paging; ranks stay absolute)
    filters: Filters = field(default_factory=Filters)
    group_duplicates: bool = False  # fold near-duplicates under the best one
    reader: str | None = None  # rank and label for this context without filtering by it
