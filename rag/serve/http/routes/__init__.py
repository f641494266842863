"""One router per resource: search, patterns, meta (facets, health, stats), context."""

from __future__ import annotations

from rag.serve.http.state import get_state
from rag.serve.wire import ErrorResponse

__all__ = ["ERRORS", "errors", "get_state"]

ERRORS = {
    400: {"model": ErrorResponse, "description": "The body cannot be read (not UTF-8 JSON)."},
    404: {"model": ErrorResponse, "description": "Unknown slug (the close ones are suggested)."},
    413: {"model": ErrorResponse, "description": "Request body too large."},
    422: {"model": ErrorResponse, "description": "Invalid input; `field` names it, `valid` lists valid filter values."},
}


def errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in codes}
