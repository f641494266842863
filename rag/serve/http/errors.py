"""Every error of the HTTP API becomes a JSON body naming the field, in this one place.

`RagError` subclasses map to their status (input 422, unknown slug 404, index or engine trouble 503 with a
retry hint); request validation errors become one sentence naming the field; a 500 means a bug, logged
with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import EngineUnavailable, IndexError_, IndexLoading, Overloaded, PatternNotFound, QueryError, UnknownFilterValue
from rag.search.retriever import EMPTY_QUERY
from rag.serve.metrics import ERRORS
from rag.serve.service import SLUG_RULE

log = logging.getLogger(__name__)


def error_response(status: int, detail: str, field: str | None = None, **extra) -> JSONResponse:
    body = {"detail": detail, "field": field}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status)


def _validation_message(field: str, error: dict) -> str:
    """A pydantic error as a sentence naming the field, with the allowed range where there is one."""
    kind, ctx, got = error.get("type", ""), error.get("ctx") or {}, error.get("input")
    if kind == "json_invalid":
        return "request body is not valid JSON"
    if kind == "missing":
        return f"{field} is required"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{field} must be at least {_number(ctx.get('ge', ctx.get('gt')))}, got {_number(got)}"
    if kind in ("less_than_equal", "less_than"):
        return f"{field} must be at most {_number(ctx.get('le', ctx.get('lt')))}, got {_number(got)}"
    if kind == "string_pattern_mismatch" and field == "slug":
        return f"invalid slug {_number(repr(got))}: {SLUG_RULE}"
    if kind == "string_too_short":
        return EMPTY_QUERY if field == "query" else f"{field} is empty"  # "" reads as "   " does
    if kind == "string_too_long" and isinstance(got, str):
        return f"{field} has {len(got)} characters; the limit is {ctx.get('max_length')}"
    return f"{field}: {error.get('msg', 'invalid value')}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return error_response(422, str(exc), exc.field)

    @app.exception_handler(UnknownFilterValue)
    async def _unknown_value(request: Request, exc: UnknownFilterValue) -> JSONResponse:
        in_filters = exc.field in ("domain", "context", "status", "min_confidence") and not request.url.path.startswith("/patterns")
        field = f"filters.{exc.field}" if in_filters else exc.field
        return error_response(422, str(exc), field, valid=exc.valid)

    @app.exception_handler(PatternNotFound)
    async def _not_found(request: Request, exc: PatternNotFound) -> JSONResponse:
        return error_response(404, str(exc), exc.field, suggestions=exc.suggestions)

    def retry_later(kind: str):
        """503 with the error's Retry-After, counted in rag_errors_total{kind}."""

        async def handle(request: Request, exc: EngineUnavailable | Overloaded) -> JSONResponse:
            ERRORS.labels(kind).inc()
            response = error_response(503, str(exc), exc.field)
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response

        return handle

    app.add_exception_handler(EngineUnavailable, retry_later("engine"))
    app.add_exception_handler(Overloaded, retry_later("overloaded"))

    @app.exception_handler(IndexError_)
    async def _index(request: Request, exc: IndexError_) -> JSONResponse:
        response = error_response(503, str(exc), exc.field)
        retry = exc.retry_after_s if isinstance(exc, IndexLoading) else None
        if retry:
            response.headers["Retry-After"] = str(retry)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        loc = [str(p) for p in first.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path") and len(loc) > 1:
            loc = loc[1:]
        field = ".".join(loc) or "body"
        if first.get("type") == "json_invalid":
            field = "body"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        return error_response(422, _validation_message(field, first) + more, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = "body" if exc.status_code == 400 else None
        return JSONResponse({"detail": str(exc.detail), "field": field}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        ERRORS.labels("encoder" if _in_encoder(exc) else "bug").inc()
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error (a bug, logged on the server); the request may be retried")


def _in_encoder(exc: BaseException) -> bool:
    """Whether an unexpected error was raised inside the encoder (rag/embedding), by its traceback."""
    tb = exc.__traceback__
    while tb is not None:
        if "/rag/embedding/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False
