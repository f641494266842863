"""`rag.Client(url)`: a running `rag serve` asked over HTTP, with the methods, arguments and records of an index
opened in process (`rag.api.library.Library`), and the server's errors raised as the same typed exceptions.

Nothing here loads a model or imports torch: requests go out with the standard library (urllib), and the
answers (rag.serve.wire's JSON) become records (rag.api.wire). A 4xx becomes the error the opened index raises
for the same call (`QueryError`, `UnknownFilterValue` with the valid values, `PatternNotFound` with the
suggestions; a filter's field is named as in process, `domain` rather than `filters.domain`), with the server's
message; a 503 an `IndexError_` (`IndexLoading` while the server opens its index, `EngineUnavailable` when its
engine is unreachable); an unreachable server `ServerUnreachable`, and anything else `ServerError`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rag.api import wire
from rag.api.answers import PatternAnswer, RelatedAnswer, SimilarAnswer
from rag.api.library import FILTER_FIELDS, FiltersLike, Library, as_filters
from rag.errors import (
    ConfigError,
    EngineUnavailable,
    IndexError_,
    IndexLoading,
    PatternNotFound,
    QueryError,
    RagError,
    UnknownFilterValue,
    error_body,
    local_field,
    shorten,
)
from rag.load.library import SLUG_RE
from rag.records.filters import Filters
from rag.records.results import Results
from rag.search.browse import PatternPage
from rag.search.context import ContextPack
from rag.search.filters import Facets
from rag.serve.service import SLUG_RULE

# A server started moments ago may load its model on the first search: about 20 s on 2 cores.
TIMEOUT_S = 120.0
T = TypeVar("T")


class ServerUnreachable(EngineUnavailable):
    """The server cannot be reached (connection refused, unknown host, timed out); retrying later may succeed."""

    field = "url"


class ServerError(RagError, RuntimeError):
    """The server failed (HTTP 5xx other than 503: a bug it logged), or answered with something other than a
    `rag serve` of this version would."""

    field = "url"


class Client(Library):
    """A `rag serve` at `url` (http://127.0.0.1:8000 when none is given; http:// when no scheme is given); each
    method is documented on `Library`. `headers` go with every request (a proxy's authorization, say)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, timeout: float = TIMEOUT_S, headers: Mapping[str, str] | None = None):
        self.url = base_url(url)
        self.timeout = timeout
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        offset: int = 0,
        filters: FiltersLike = None,
        group_duplicates: bool = False,
        reader: str | None = None,
        explain: bool = False,
    ) -> Results:
        chosen = as_filters(filters)
        body = {
            "query": query,
            "k": k,
            "offset": offset,
            "filters": _given(chosen),
            "group_duplicates": group_duplicates,
            "reader": reader,
            "explain": explain,
        }
        return self._call("POST", "/search", wire.results, body=body, asked={**_given(chosen), "reader": reader})

    def pattern(self, slug: str, context: str | None = None) -> PatternAnswer:
        asked = {"slug": slug, "context": context}
        return self._call("GET", f"/patterns/{_slug(slug)}", wire.pattern_answer, params={"context": context}, asked=asked)

    def related(self, slug: str) -> RelatedAnswer:
        return self._call("GET", f"/patterns/{_slug(slug)}/related", wire.related_answer, asked={"slug": slug})

    def similar(self, slug: str, k: int = 10, *, filters: FiltersLike = None) -> SimilarAnswer:
        chosen = _given(as_filters(filters))
        path = f"/patterns/{_slug(slug)}/similar"
        return self._call("GET", path, wire.similar_answer, params={"k": k, **chosen}, asked={"slug": slug, **chosen})

    def facets(self) -> Facets:
        return self._call("GET", "/facets", wire.facets)

    def list_patterns(self, filters: FiltersLike = None, limit: int = 20, offset: int = 0) -> PatternPage:
        chosen = _given(as_filters(filters))
        return self._call("GET", "/patterns", wire.pattern_page, params={**chosen, "limit": limit, "offset": offset}, asked=chosen)

    def context_pack(self, query: str, budget_tokens: int = 2000, *, filters: FiltersLike = None, patterns: int = 5) -> ContextPack:
        chosen = _given(as_filters(filters))
        body = {"query": query, "budget_tokens": budget_tokens, "patterns": patterns, "filters": chosen}
        return self._call("POST", "/context", wire.context_pack, body=body, asked=chosen)

    # -- the transport ----------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        read: Callable[[dict[str, Any]], T],
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        asked: dict[str, Any] | None = None,
    ) -> T:
        """The server's answer to `method path` read by `read`; `asked` holds the values a 4xx may name."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        target = self.url + path + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"accept": "application/json", **({"content-type": "application/json"} if data is not None else {}), **self.headers}
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise error(self.url, path, exc.code, exc.headers.get("Retry-After"), exc.read(), asked or {}) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, unknown host, timed out
            reason = getattr(exc, "reason", None) or exc
            raise ServerUnreachable(
                f"cannot reach the server at {self.url} ({reason}); start one with `rag serve`, or check the URL"
            ) from None
        try:
            return read(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerError(
                f"the server at {self.url} answered {path} with something this client cannot read ({type(exc).__name__}: {exc}); "
                "is it a `rag serve` of this version?"
            ) from None


def base_url(url: str) -> str:
    """`url` as a base URL (http:// when no scheme is given, no trailing slash); ConfigError if it is not one."""
    text = url.strip() if isinstance(url, str) else ""
    if text and "://" not in text:
        text = f"http://{text}"
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("url", f"the server's URL must be an http(s) URL such as http://127.0.0.1:8000, got {shorten(url)}")
    return text.rstrip("/")


def _slug(slug: str) -> str:
    """`slug` for a URL path; a malformed one (a path, say) is refused here as the opened index refuses it."""
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        shown = slug if isinstance(slug, str) and len(slug) <= 80 else f"{str(slug)[:77]}..."
        raise QueryError("slug", f"invalid slug {shown!r}: {SLUG_RULE}")
    return urllib.parse.quote(slug, safe="")


def _given(filters: Filters) -> dict[str, Any]:
    """The filters that are set, by name (the wire's form)."""
    return {name: getattr(filters, name) for name in FILTER_FIELDS if getattr(filters, name) is not None}


def error(base: str, path: str, status: int, retry_after: str | None, raw: bytes, asked: dict[str, Any]) -> RagError:
    """The typed error the opened index raises for the server's error body ({"detail", "field", "valid"?,
    "suggestions"?}), with the server's message; `asked` holds the slug and filter values the request sent."""
    body, detail, field = error_body(raw)
    if body is None or not isinstance(detail, str) or (status == 404 and field != "slug"):
        return ServerError(f"the server at {base} answered {path} with HTTP {status}; is it a `rag serve` of this version?")
    if status == 404:
        return _said(PatternNotFound(str(asked.get("slug")), list(body.get("suggestions") or [])), detail)
    if status == 503:
        if retry_after and "loading" in detail:
            return IndexLoading(detail)
        return (EngineUnavailable if retry_after else IndexError_)(detail, field if isinstance(field, str) else None)
    if 400 <= status < 500:
        field, detail = local_field(field, detail) if isinstance(field, str) else ("body", detail)
        valid = body.get("valid")
        if isinstance(valid, list):
            return _said(UnknownFilterValue(field, asked.get(field), valid), detail)
        return QueryError(field, detail)
    return ServerError(f"the server at {base} cannot answer {path} (HTTP {status}): {detail}")


def _said(exc: RagError, detail: str) -> RagError:
    """`exc` with the server's own message."""
    exc.args = (detail,)
    return exc
