"""Every error the library raises on purpose, under one base that names the offending input.

Faces map errors in one place each (HTTP: `serve/http/errors.py`, MCP: `serve/mcp.py`, CLI: `cli/common.py`):
- `InputError` and its subclasses are the caller's mistake (HTTP 4xx, CLI exit 2);
- `IndexError_` and its subclasses mean the index cannot be served as it is (HTTP 503); the message says what to do.
`field` names the request field, option or file at fault, so every face can point at it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

ECHO_CHARS = 80  # the most of a caller's value an error message repeats


def shorten(value: object, limit: int = ECHO_CHARS) -> str:
    """`value` as a message shows it: its repr, cut to `limit` characters (a caller's input is echoed, never at any length)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


class RagError(Exception):
    """Base of every deliberate error; `field` is the offending input (a request field, an option, a path)."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        if field is not None:
            self.field = field


# -- the caller's input ----------------------------------------------------------------------------
class InputError(RagError, ValueError):
    """A request that cannot be answered as asked."""


class QueryError(InputError):
    """A query parameter out of range or unusable; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field)


class UnknownFilterValue(InputError):
    """A filter value the index does not have; `valid` lists the ones it has."""

    def __init__(self, field: str, value: object, valid: Sequence[str]):
        valid = list(valid)
        shown = ", ".join(valid[:50]) + (f", ... ({len(valid)} in all; see /facets)" if len(valid) > 50 else "")
        super().__init__(f"unknown {field} {shorten(value)}; valid values: {shown}", field)
        self.value = value
        self.valid = valid


class PatternNotFound(RagError, LookupError):
    """No pattern has this slug; `suggestions` are close slugs."""

    def __init__(self, slug: str, suggestions: list[str]):
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else "; search first to find slugs"
        super().__init__(f"no pattern with slug {slug!r}{hint}", "slug")
        self.slug = slug
        self.suggestions = suggestions


class LibraryError(RagError):
    """The library folder cannot be used at all (missing, not a folder, no pattern files)."""

    def __init__(self, message: str, field: str = "library"):
        super().__init__(message, field)


class ConfigError(RagError):
    """A setting (an option or an environment variable) has an unusable value; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field)


# -- the index ------------------------------------------------------------------------------------
class IndexError_(RagError):
    """Base class: the index cannot be served as it is. The message says what to do."""

    field = "index"


class IndexNotFound(IndexError_):
    pass


class IndexCorrupt(IndexError_):
    pass


class IndexIncompatible(IndexError_):
    pass


class BuildLocked(IndexError_):
    pass


class ShrinkRefused(IndexError_):
    """A build would drop more than half of the served build's patterns, or a whole domain; the caller may allow it."""

    field = "library"


class StorageError(IndexError_):
    """The index folder cannot be written (full disk, read-only, permission denied); the previous build is untouched."""

    field = "index_dir"


class EngineUnavailable(IndexError_):
    """A networked search engine cannot be reached; retrying later may succeed."""

    retry_after_s: int = 5


class Overloaded(RagError):
    """More searches are waiting than the server admits (`max_pending`); retry shortly (HTTP 503 with Retry-After)."""

    field = "query"
    retry_after_s: int = 1


class IndexLoading(IndexError_):
    """The server is still opening its index; it answers once loaded."""

    retry_after_s: int = 2

    def __init__(self, message: str = "the index is still loading; retry in a few seconds"):
        super().__init__(message)


class RebuildError(RagError, RuntimeError):
    """A reindex cannot start (no library to build from); the served state is untouched."""

    field = "library"


# -- as a client reads them back from a `rag serve` ------------------------------------------------------------
def error_body(raw: bytes) -> tuple[dict | None, object, object]:
    """A server's error body ({"detail", "field", ...}): the body (None unless a JSON object), its detail and its
    field (None when absent; the callers check their types)."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, None, None
    return body, body.get("detail"), body.get("field")


def local_field(field: str, detail: str) -> tuple[str, str]:
    """A filter's field as named in process and on the command line (`domain`, not the wire's `filters.domain`), and
    the message, whose leading field name is changed alike."""
    if not field.startswith("filters."):
        return field, detail
    short = field.removeprefix("filters.")
    return short, (short + detail[len(field) :] if detail.startswith(field) else detail)
