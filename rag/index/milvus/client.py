"""One pymilvus client per server and credentials, and the one mapping of Milvus failures to typed errors.

Traps handled here (measured on Milvus Lite 2.5.1 with pymilvus 2.5.18, /work/drafts/milvus/NOTES.md):
- clients with the same uri share one global connection and `close()` on one closes it for all, so each
  client gets its own alias; the same client recovers by itself after the server restarts;
- `MilvusClient(timeout=)` is only the connect timeout: every call passes an int `timeout` (a float is not
  used as the retry budget, and a down server would be retried 75 times);
- an unreachable server raises `MilvusException` (its `code` is sometimes a bound method), a hung one a raw
  `grpc.RpcError` (DEADLINE_EXCEEDED), an unimplemented call (aliases on Lite) a raw `grpc.RpcError`
  (UNIMPLEMENTED); all become `EngineUnavailable` (HTTP 503 with Retry-After) except a missing collection
  (`IndexCorrupt`: the build is gone, rebuild);
- pymilvus logs every failed call with a traceback at ERROR; its loggers are raised to CRITICAL, and this
  module logs one line instead. Tokens never appear in messages: only `redact(uri)` is ever shown.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from rag.config import MilvusSettings
from rag.errors import ConfigError, EngineUnavailable, IndexCorrupt

log = logging.getLogger(__name__)
T = TypeVar("T")

_clients: dict[tuple[str, str, int], object] = {}
_lock = threading.Lock()
_UNREACHABLE_CODES = {2, "UNAVAILABLE", "DEADLINE_EXCEEDED"}


def redact(uri: str) -> str:
    """The URI without user information (credentials never reach the manifest or a log)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, parts.query, parts.fragment))


def pymilvus():
    """The pymilvus module, or ConfigError with the install hint."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pymilvus as module
    except ImportError:
        raise ConfigError("engine", "the Milvus engine needs the milvus extra: pip install -e '.[milvus]'") from None
    for name in ("pymilvus", "pymilvus.milvus_client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return module


def connect(settings: MilvusSettings):
    """The shared client of this server and credentials (created on first use; EngineUnavailable while down)."""
    key = (settings.uri, settings.token or "", settings.timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
    module = pymilvus()
    try:
        client = module.MilvusClient(uri=settings.uri, token=settings.token or "", timeout=settings.timeout_s, alias=f"rag-{uuid.uuid4().hex[:12]}")
    except Exception as exc:  # noqa: BLE001 - pymilvus raises MilvusException or grpc errors here
        raise unavailable(settings.uri, exc) from None
    with _lock:
        return _clients.setdefault(key, client)


def code_of(exc: BaseException):
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            code = code()
        except Exception:  # noqa: BLE001
            code = None
    return getattr(code, "name", code)


def is_unimplemented(exc: BaseException) -> bool:
    return code_of(exc) == "UNIMPLEMENTED" or "UNIMPLEMENTED" in str(exc)


def unavailable(uri: str, exc: BaseException) -> EngineUnavailable:
    reason = getattr(exc, "message", None)
    details = getattr(exc, "details", None)
    if not reason and callable(details):
        reason = details()  # a raw grpc.RpcError
    reason = (str(reason or exc) or type(exc).__name__).splitlines()[0][:200]
    log.warning("Milvus at %s unreachable: %s", redact(uri), reason)
    return EngineUnavailable(f"the Milvus engine at {redact(uri)} is unreachable or failing ({reason}); retry in a few seconds", "engine")


class Gate:
    """Bounds the calls to one Milvus server: at most `limit` at once (a call that finds them all taken waits at most
    `wait_s`, then fails with EngineUnavailable), and a breaker that opens after `failures` calls in a row failed as
    unreachable (timeouts included), failing every call at once for `open_s` seconds before letting one through again.
    A hung Milvus then ties up at most `limit` server threads for one timeout each, and every other route, which never
    touches Milvus, keeps its threads (issue 26: /health took 10.8 s under 48 clients before)."""

    def __init__(self, limit: int = 8, failures: int = 3, open_s: float = 5.0, wait_s: float = 0.05):
        self.limit, self.failures, self.open_s, self.wait_s = limit, failures, open_s, wait_s
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._failed = 0
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return time.monotonic() < self._open_until

    def run(self, uri: str, call: Callable[[], T]) -> T:
        if self.open:
            left = self._open_until - time.monotonic()
            raise EngineUnavailable(f"the Milvus engine at {redact(uri)} failed {self.failures} calls in a row; not calling it for {left:.0f} s", "engine")
        if not self._slots.acquire(timeout=self.wait_s):
            raise EngineUnavailable(f"the Milvus engine at {redact(uri)} is answering {self.limit} calls already; retry in a few seconds", "engine")
        try:
            result = call()
        except EngineUnavailable:
            with self._lock:
                self._failed += 1
                if self._failed >= self.failures:
                    self._open_until = time.monotonic() + self.open_s
                    log.warning("Milvus at %s: %d failures in a row; breaker open for %.0f s", redact(uri), self._failed, self.open_s)
            raise
        finally:
            self._slots.release()
        with self._lock:
            self._failed = 0
        return result


_gates: dict[str, Gate] = {}


def gate(settings: MilvusSettings) -> Gate:
    """The gate of one server (shared by every engine and build that calls it)."""
    with _lock:
        found = _gates.get(settings.uri)
        if found is None:
            found = _gates[settings.uri] = Gate(settings.max_concurrency, settings.breaker_failures, settings.breaker_open_s)
        return found


def guarded(uri: str, collection: str, call, *args, **kwargs):
    """`call(*args, **kwargs)` with every Milvus or gRPC failure mapped to EngineUnavailable or IndexCorrupt."""
    import grpc

    module = pymilvus()
    try:
        return call(*args, **kwargs)
    except (module.MilvusException, grpc.RpcError) as exc:
        text = str(getattr(exc, "message", "") or exc).lower()
        if code_of(exc) == 100 or "collection not found" in text or "can't find collection" in text:
            raise IndexCorrupt(f"Milvus collection {collection} is missing on {redact(uri)}; run `rag index LIBRARY --engine milvus --rebuild`") from None
        raise unavailable(uri, exc) from None
