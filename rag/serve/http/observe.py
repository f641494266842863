"""What an operator sees of a running server: request ids, security headers, Prometheus metrics, structured logs.

`Observe` is one pure-ASGI middleware around the app:
- `X-Request-ID`: taken from the request when it is a short token, else generated; echoed in the response and put in
  every log line written while the request runs (`request_id` of `RequestIdFilter`);
- `X-Content-Type-Options: nosniff` on every response, and a Content-Security-Policy on the docs pages (the analyst page
  sets its own, stricter one);
- metrics: requests by route template, method and status, and a latency histogram by route.
`GET /metrics` (rag.serve.http.routes.meta) renders the registry: those, plus the micro-batcher's batch sizes and queue
depth, the served index version and build time, and encoder and engine errors (counted where they are raised to a
face). With several workers (`rag serve --workers`), each process keeps its own registry in the multiprocess folder
`PROMETHEUS_MULTIPROC_DIR` and the endpoint aggregates them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.serve.metrics import LATENCY, REQUESTS

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is echoed only when it is a short plain token
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)


def route_of(scope: Scope) -> str:
    """The route template of a request (`/patterns/{slug}`), never the raw path (bounded label values)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    return "/mcp" if scope.get("path", "").startswith("/mcp") else "(unmatched)"


class Observe:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        docs = scope.get("path") in ("/docs", "/redoc")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if docs and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", DOCS_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = route_of(scope)
            REQUESTS.labels(route, scope.get("method", "?"), str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)
            REQUEST_ID.reset(token)


# -- logs -------------------------------------------------------------------------------------------------------
class RequestIdFilter(logging.Filter):
    """Puts the running request's id on every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (and the exception, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


TEXT_FORMAT = "%(levelname)s %(name)s [%(request_id)s]: %(message)s"


def configure_logging(log_format: str = "text") -> None:
    """Every handler of the root logger (and uvicorn's) gets the request id, and JSON lines with `json`."""
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RequestIdFilter())
            handler.setFormatter(formatter)
