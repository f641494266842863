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

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from rag import __version__
from rag.config import Settings
from rag.embedding.choose import query_encoder
from rag.embedding.encoder import Encoder
from rag.serve import web
from rag.serve.http.errors import add_error_handlers
from rag.serve.http.limits import BodyLimit
from rag.serve.http.observe import Observe
from rag.serve.http.routes import admin, context, meta, patterns, search
from rag.serve.http.state import follow, swap_state
from rag.serve.state import State

__all__ = ["create_app", "swap_state"]

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(
    settings: Settings, *, embedder: Encoder | None = None, state: State | None = None, background_load: bool = False
) -> FastAPI:
    """The API for `settings.index_dir`. `embedder` (e.g. a test's shared model) or a ready `state` skip loading.

    With `background_load` the server answers at once: /health says "loading" (other routes 503 with
    Retry-After) until the index is open, then "ok"; the model warms up after that (`model_ready`)."""

    made: list[Encoder] = []

    def encoder() -> Encoder:
        """The encoder the app serves with: the one given, else one made once (also after a failed first load)."""
        if embedder is not None:
            return embedder
        if not made:
            made.append(query_encoder())
        return made[0]

    def load_in_background(app: FastAPI) -> None:
        try:
            loaded = State.load(settings.index_dir, encoder(), settings.retriever, warm=False, milvus=settings.milvus)
            swap_state(app, loaded.with_batching(settings.batch_window_ms, settings.batch_max).with_admission(settings.max_pending))
            loaded.warm()
        except Exception as exc:  # reported by /health and every route; the server keeps answering
            log.error("cannot serve %s: %s", settings.index_dir, exc)
            app.state.load_error = exc

    def reload_served(current: State | None) -> State:
        from rag.serve.admin import reload

        limits = (settings.batch_window_ms, settings.batch_max)
        return reload(current, settings.index_dir, encoder(), settings.retriever, settings.milvus, limits).with_admission(
            settings.max_pending
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.rag is None:
            if background_load:
                threading.Thread(target=load_in_background, args=(app,), name="rag-load", daemon=True).start()
            else:
                import anyio.to_thread

                loaded = await anyio.to_thread.run_sync(
                    lambda: State.load(settings.index_dir, encoder(), settings.retriever, milvus=settings.milvus)
                )
                swap_state(app, loaded.with_batching(settings.batch_window_ms, settings.batch_max).with_admission(settings.max_pending))
        stop = threading.Event()
        if settings.workers > 1:  # one of several workers: follow the build another worker announces after a swap
            threading.Thread(target=follow, args=(app, reload_served, stop), name="rag-follow", daemon=True).start()
        mcp_http = _mcp_transport(app, settings)
        app.state.mcp_http = mcp_http
        async with mcp_http.run():
            yield
        stop.set()
        app.state.mcp_http = None

    app = FastAPI(
        title="pattern-rag",
        version=__version__,
        summary="Hybrid search over a pattern library: search, read, relate, context packs; MCP at /mcp.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from rag.serve.web, with their assets served locally (offline)
        redoc_url=None,
    )
    app.state.rag = None
    app.state.load_error = None
    if state is not None:
        swap_state(app, state.with_batching(settings.batch_window_ms, settings.batch_max).with_admission(settings.max_pending))
    app.state.embedder_factory = encoder
    app.state.mcp_http = None
    app.state.settings = settings
    app.state.admin_lock = threading.Lock()  # one reindex or reload at a time
    for module in (search, patterns, meta, context):
        app.include_router(module.router)
    app.include_router(web.router)  # the analyst page at /, /p/{slug}, its assets, offline /docs and /redoc
    app.include_router(admin.router, include_in_schema=bool(settings.admin_token))  # listed only when enabled
    add_error_handlers(app)
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
    app.add_middleware(Observe)  # outermost: every response gets its request id, headers and metrics
    return app


# -- MCP over streamable HTTP ---------------------------------------------------------------------
def _mcp_transport(app: FastAPI, settings: Settings):
    """A fresh streamable-HTTP session manager (one can run only once, so one per lifespan)."""
    from mcp.server.transport_security import TransportSecuritySettings

    from rag.serve.mcp import build_mcp

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
