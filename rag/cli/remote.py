"""`rag search --server URL` (or $RAG_SERVER): ask a running `rag serve` over HTTP instead of opening an index.

Nothing here opens the index or loads the model, nor imports torch, numpy or the search stages: the request
goes out with the standard library (urllib), and the answer, the wire's SearchResponse JSON, becomes the
`Results` record the terminal renderer takes (`Results.from_dict`), so a remote search prints what a local
one prints. Errors read as the local command's and exit 2 as they do: a 4xx names the field as a local search
does (`filters.domain` becomes `domain`); an unreachable server, one still loading its index and a 5xx name
the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from rag.cli.common import fail
from rag.errors import error_body, local_field

SERVER_ENV = "RAG_SERVER"
# A server started moments ago may load its model on the first search: about 20 s on 2 cores.
TIMEOUT_S = 120.0


def base_url(server: str) -> str:
    """`server` as a base URL (http:// when no scheme is given, no trailing slash); exit 2 if it is not one."""
    text = server.strip()
    if text and "://" not in text:
        text = f"http://{text}"
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(f"--server (or {SERVER_ENV}) must be an http(s) URL such as http://127.0.0.1:8000, got {server!r}")
    return text.rstrip("/")


def search(server: str, body: dict) -> dict:
    """The server's answer to POST /search with `body` (the wire's SearchRequest), as JSON."""
    return call(server, "POST", "/search", body)


def results(server: str, answer: dict):
    """A /search answer as the `Results` record the renderer takes."""
    from rag.records.results import Results

    try:
        return Results.from_dict(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        fail(
            f"the server at {base_url(server)} answered /search with something other than search results ({type(exc).__name__}: {exc}); "
            f"is it a `rag serve` of this version?"
        )


def call(server: str, method: str, path: str, body: dict | None = None) -> dict:
    base = base_url(server)
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"content-type": "application/json", "accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        fail(error_message(base, path, exc.code, exc.headers.get("Retry-After"), exc.read()))
    except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out
        reason = getattr(exc, "reason", None) or exc
        fail(
            f"cannot reach the server at {base} ({reason}); start one with `rag serve`, or point --server or {SERVER_ENV} at a running one"
        )
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        fail(f"the server at {base} did not answer {path} with a JSON object; is it a `rag serve`?")
    return answer


def error_message(base: str, path: str, status: int, retry_after: str | None, raw: bytes) -> str:
    """What the local command would say for the server's error body ({"detail", "field"}), or what went wrong."""
    _, detail, field = error_body(raw)
    if not isinstance(detail, str) or (status == 404 and not field):
        return f"the server at {base} answered {path} with HTTP {status}; is it a `rag serve`?"
    if status == 503 and "loading" in detail:
        return f"the server at {base} is still loading its index; retry in {retry_after or 'a few'} s"
    if 400 <= status < 500:
        if isinstance(field, str):  # the local command names the option: domain, not filters.domain
            field, detail = local_field(field, detail)
        return f"{field}: {detail}" if field else detail
    return f"the server at {base} cannot answer {path} (HTTP {status}): {detail}"
