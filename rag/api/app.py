"""The FastAPI app: one index loaded at start-up, one router per resource, MCP mounted at /mcp.

The served `State` lives on `app.state.rag` and is only ever replaced whole (`swap_state`), so each
request reads one index version from start to end. Every user error is a 4xx JSON body naming the
field (`ErrorResponse`); a 500 means a bug, and is logged with its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..config import Settings
from ..embedding import Embedder
from ..filters import UnknownFilterValue
from ..retriever import QueryError
from ..service import SLUG_RULE, PatternNotFound, State
from .routes import admin, context, meta, patterns, search

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(settings: Settings, *, embedder: Embedder | None = None, state: State | None = None) -> FastAPI:
    """The API for `settings.index_dir`. `embedder` (e.g. a test's shared model) or a ready `state` skip loading."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "rag", None) is None:
            import anyio.to_thread

            app.state.rag = await anyio.to_thread.run_sync(lambda: State.load(settings.index_dir, embedder or Embedder(), settings.retriever))
        mcp_http = _mcp_transport(app, settings)
        app.state.mcp_http = mcp_http
        async with mcp_http.run():
            yield
        app.state.mcp_http = None

    app = FastAPI(
        title="pattern-rag",
        version=__version__,
        summary="Hybrid search over a pattern library: search, read, relate, context packs; MCP at /mcp.",
        lifespan=lifespan,
    )
    app.state.rag = state
    app.state.mcp_http = None
    app.state.settings = settings
    app.state.admin_lock = threading.Lock()  # one reindex or reload at a time
    for module in (search, patterns, meta, context):
        app.include_router(module.router)
    app.include_router(admin.router, include_in_schema=bool(settings.admin_token))  # listed only when enabled
    _add_error_handlers(app)
    app.add_route("/mcp", _McpEndpoint(app), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type", "authorization", "mcp-session-id", "mcp-protocol-version", "last-event-id"],
            expose_headers=["mcp-session-id"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def swap_state(app: FastAPI, new: State) -> State:
    """Serve `new` from the next request on (one reference assignment); returns the previous state."""
    old = app.state.rag
    app.state.rag = new
    return old


# -- MCP over streamable HTTP ---------------------------------------------------------------------
def _mcp_transport(app: FastAPI, settings: Settings):
    """A fresh streamable-HTTP session manager (one can run only once, so one per lifespan)."""
    from mcp.server.transport_security import TransportSecuritySettings

    from ..mcp_server import build_mcp

    server = build_mcp(lambda: app.state.rag)
    security = None
    if settings.host in LOOPBACK:  # refuse DNS-rebinding: only loopback hosts, loopback or configured origins
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *settings.cors_origins],
        )
    server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=True,
        stateless_http=True,
        max_request_body_size=settings.max_body_bytes,
        transport_security=security,
        host=settings.host,
    )
    return server.session_manager


class _McpEndpoint:
    """ASGI endpoint for /mcp that forwards to the transport of the running lifespan."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self.app.state.mcp_http
        if manager is None:
            response = JSONResponse({"detail": "MCP transport is not running; retry shortly"}, status_code=503)
            await response(scope, receive, send)
            return
        await manager.asgi_app(scope, receive, send)


# -- limits and errors ----------------------------------------------------------------------------
class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, by Content-Length or while reading a chunked body."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _error(400, "Content-Length is not a number", "body")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, f"request body is larger than {self.max_bytes} bytes; send a shorter query", "body")(scope, receive, send)


def _error(status: int, detail: str, field: str | None = None, **extra) -> JSONResponse:
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
        return f"{field} is empty"
    if kind == "string_too_long" and isinstance(got, str):
        return f"{field} has {len(got)} characters; the limit is {ctx.get('max_length')}"
    return f"{field}: {error.get('msg', 'invalid value')}"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return _error(422, str(exc), exc.field)

    @app.exception_handler(UnknownFilterValue)
    async def _unknown_value(request: Request, exc: UnknownFilterValue) -> JSONResponse:
        field = exc.field if request.url.path.startswith("/patterns") else f"filters.{exc.field}"
        return _error(422, str(exc), field, valid=exc.valid)

    @app.exception_handler(PatternNotFound)
    async def _not_found(request: Request, exc: PatternNotFound) -> JSONResponse:
        return _error(404, str(exc), exc.field, suggestions=exc.suggestions)

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
        return _error(422, _validation_message(field, first) + more, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = "body" if exc.status_code == 400 else None
        return JSONResponse({"detail": str(exc.detail), "field": field}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (a bug, logged on the server); the request may be retried")
