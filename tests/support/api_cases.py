"""The calls the Python API's tests make of an opened index and of a client (tests/unit/test_public_api.py with
the fake encoder, tests/integration/test_python_api.py with the real model): each answers the same record both ways."""

from __future__ import annotations

import json
from typing import Any

from rag.errors import InputError, PatternNotFound, QueryError, UnknownFilterValue
from rag.records.filters import Filters
from support import SHELVES

# (method, args, kwargs): every method, every argument, paging, filters as a record and as a mapping
CALLS: list[tuple[str, tuple, dict[str, Any]]] = [
    ("search", (SHELVES,), {}),
    ("search", (SHELVES, 3), {"offset": 2}),
    ("search", ("member-owned",), {"filters": {"domain": "governance", "context": "activist"}, "k": 3}),
    ("search", (SHELVES,), {"reader": "government", "group_duplicates": True, "filters": Filters(min_confidence=0.6)}),
    ("search", ("Open Book Management", 3), {}),
    ("search", ("zzzz qqqq", 1), {"filters": {"status": "stable"}}),
    ("pattern", ("pull-based-replenishment",), {}),
    ("pattern", ("open-book-management",), {"context": "Government"}),
    ("related", ("pull-based-replenishment",), {}),
    ("related", ("time-banking",), {}),
    ("similar", ("pull-based-replenishment",), {}),
    ("similar", ("time-banking", 3), {"filters": {"domain": "community"}}),
    ("facets", (), {}),
    ("list_patterns", (), {}),
    ("list_patterns", ({"domain": "finance"}, 2, 1), {}),
    ("context_pack", (SHELVES,), {}),
    ("context_pack", ("we keep starting work and finishing nothing", 300), {"filters": {"domain": "operations"}, "patterns": 2}),
]

# (method, args, kwargs, error type, field, whether both faces raise the same type with the same words: range errors
# carry the HTTP API's wording over HTTP, as `rag search --server` does, and its own check of min_confidence's range
# is a QueryError where the opened index's is an UnknownFilterValue: both InputErrors)
ERRORS: list[tuple[str, tuple, dict[str, Any], type, str, bool]] = [
    ("search", ("   ",), {}, QueryError, "query", True),
    ("search", (SHELVES, 0), {}, QueryError, "k", False),
    ("search", (SHELVES,), {"offset": -1}, QueryError, "offset", False),
    ("search", (SHELVES,), {"filters": {"domain": "shipping"}}, UnknownFilterValue, "domain", True),
    ("search", (SHELVES,), {"filters": {"min_confidence": 2.0}}, InputError, "min_confidence", False),
    ("search", (SHELVES,), {"reader": "martian"}, UnknownFilterValue, "reader", True),
    ("search", (SHELVES,), {"filters": {"domian": "finance"}}, QueryError, "filters", True),
    ("pattern", ("pull-based-replenishmnt",), {}, PatternNotFound, "slug", True),
    ("pattern", ("../etc/passwd",), {}, QueryError, "slug", True),
    ("pattern", ("pull-based-replenishment",), {"context": "martian"}, UnknownFilterValue, "context", True),
    ("related", ("no-such-pattern",), {}, PatternNotFound, "slug", True),
    ("similar", ("pull-based-replenishment", 0), {}, QueryError, "k", False),
    ("similar", ("pull-based-replenishment",), {"filters": {"status": "bogus"}}, UnknownFilterValue, "status", True),
    ("list_patterns", (), {"limit": 0}, QueryError, "limit", False),
    ("list_patterns", ({"context": "martian"},), {}, UnknownFilterValue, "context", True),
    ("context_pack", (SHELVES, 10), {}, QueryError, "budget_tokens", False),
    ("context_pack", (SHELVES,), {"filters": {"domain": "shipping"}}, UnknownFilterValue, "domain", True),
]


def call(library, method: str, args: tuple, kwargs: dict[str, Any]):
    return getattr(library, method)(*args, **kwargs)


def raised(library, method: str, args: tuple, kwargs: dict[str, Any]) -> Exception:
    try:
        call(library, method, args, kwargs)
    except Exception as exc:  # the test compares the types
        return exc
    raise AssertionError(f"{method}{args} {kwargs} raised nothing")


def assert_same_error(index, client, case: tuple) -> None:
    """The opened index and the client raise the case's error type naming the same field: with the same words where
    the case says so (and the same valid values of a filter), else in the HTTP API's words, led by the field."""
    method, args, kwargs, kind, field, same_words = case
    local, remote = raised(index, method, args, kwargs), raised(client, method, args, kwargs)
    assert isinstance(local, kind) and isinstance(remote, kind), (local, remote)
    assert local.field == remote.field == field
    if same_words:
        assert type(local) is type(remote) and str(remote) == str(local)
    else:
        assert str(remote).startswith(field)  # the HTTP API's wording, naming the field as the opened index does
    if isinstance(local, UnknownFilterValue) and same_words:
        assert remote.valid == local.valid and local.valid


def as_json(value: Any) -> Any:
    """`value` as it would cross HTTP (tuples become lists), to compare explained searches' fusion settings."""
    return json.loads(json.dumps(value))


def ids(case: tuple) -> str:
    method, args, kwargs = case[:3]
    return f"{method}{list(args)}{kwargs or ''}"[:60]
