"""Admin operations: rebuild the index from its library, or reload `current`, and swap while serving.

Disabled (404 with the reason) unless the server has an admin token; the token comes in an
`Authorization: Bearer` header and is compared in constant time. The build and the load run in a
worker thread (sync endpoints run in the thread pool) while other requests go on being answered by
the previous state; the new state replaces it in one assignment only once it is fully loaded, so
every response comes from exactly one index version. One admin operation runs at a time (409 otherwise).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from rag.errors import IndexError_, LibraryError, RebuildError, ShrinkRefused, StorageError
from rag.serve import admin
from rag.serve.http.state import announce, swap_state
from rag.serve.state import State
from rag.serve.wire import ErrorResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])
bearer = HTTPBearer(auto_error=False, description="The server's admin token (RAG_ADMIN_TOKEN).")

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong admin token."},
    404: {"model": ErrorResponse, "description": "Admin operations are disabled (the server has no admin token)."},
    409: {
        "model": ErrorResponse,
        "description": "Another admin operation is running, a build holds the index lock, the build would drop "
        "more than half of the patterns or a whole domain (send allow_shrink), or there is no library to build from.",
    },
    422: {"model": ErrorResponse, "description": "The library has no loadable pattern file."},
    507: {"model": ErrorResponse, "description": "The index folder cannot be written (full disk, read-only, permission denied)."},
}


class ReindexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    allow_shrink: bool = Field(
        False, description="Build even when the library lost more than half of the served patterns, or every pattern of a domain."
    )


class AdminResponse(BaseModel):
    action: Literal["reindex", "reload"]
    previous_version: str | None = Field(description="The index version served before (null when the first load had failed).")
    index_version: str = Field(description="The index version served from now on.")
    changed: bool = Field(description="True when a different index version is now served.")
    build: dict[str, Any] | None = Field(
        None, description="reindex: the build summary (patterns, chunks encoded and reused, seconds per stage)."
    )
    seconds: float


def require_admin(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise HTTPException(
            404, "admin operations are disabled: start the server with RAG_ADMIN_TOKEN set to enable /admin/reindex and /admin/reload"
        )
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise HTTPException(
            401, "missing or wrong admin token: send `Authorization: Bearer <RAG_ADMIN_TOKEN>`", headers={"WWW-Authenticate": "Bearer"}
        )


@contextlib.contextmanager
def _exclusive(request: Request) -> Iterator[None]:
    lock: threading.Lock = request.app.state.admin_lock
    if not lock.acquire(blocking=False):
        raise HTTPException(409, "another reindex or reload is running; retry when it has finished")
    serving = "still serving the previous index" if request.app.state.rag is not None else "nothing is served yet"
    try:
        yield
    except StorageError as exc:
        raise HTTPException(507, f"{exc}; {serving}") from exc
    except LibraryError as exc:
        raise HTTPException(422, f"{exc}; {serving}") from exc
    except (ShrinkRefused, IndexError_, RebuildError) as exc:
        raise HTTPException(409, f"{exc}; {serving}") from exc
    finally:
        lock.release()


def _swap(
    request: Request, action: Literal["reindex", "reload"], previous: State | None, new: State, started: float, build: dict | None = None
) -> AdminResponse:
    if new is not previous:
        swap_state(request.app, new)
        if request.app.state.settings.workers > 1:  # the other workers of this server follow
            announce(request.app.state.settings.index_dir, new.version)
        log.info("%s: now serving index %s (was %s)", action, new.version, previous.version if previous else "nothing")
    return AdminResponse(
        action=action,
        previous_version=previous.version if previous is not None else None,
        index_version=new.version,
        changed=previous is None or new.version != previous.version,
        build=build,
        seconds=round(time.perf_counter() - started, 3),
    )


def _embedder(request: Request, previous: State | None):
    """The served encoder, or (after a failed first load) the one the app was started with or a fresh one."""
    if previous is not None:
        return previous.retriever.embedder
    return request.app.state.embedder_factory()


def _batching(request: Request) -> tuple[float, int]:
    settings = request.app.state.settings
    return settings.batch_window_ms, settings.batch_max


@router.post("/reindex", operation_id="reindex", response_model=AdminResponse, responses=RESPONSES, dependencies=[Depends(require_admin)])
def reindex(request: Request, body: ReindexRequest | None = None) -> AdminResponse:
    """Rebuild the index from its library (incremental: unchanged chunks reuse their vectors), then serve it.
    Works after a failed first load too (the server then starts serving)."""
    settings = request.app.state.settings
    with _exclusive(request):
        started = time.perf_counter()
        previous: State | None = request.app.state.rag
        summary, new = admin.rebuild(
            previous,
            settings.index_dir,
            _embedder(request, previous),
            settings.library,
            settings.cache_dir,
            settings.retriever,
            settings.milvus,
            allow_shrink=bool(body and body.allow_shrink),
            batching=_batching(request),
        )
        return _swap(request, "reindex", previous, new, started, summary.to_dict())


@router.post("/reload", operation_id="reload", response_model=AdminResponse, responses=RESPONSES, dependencies=[Depends(require_admin)])
def reload(request: Request) -> AdminResponse:
    """Serve the index directory's `current` build (after `rag index` ran elsewhere), without building. Works after
    a failed first load too."""
    settings = request.app.state.settings
    with _exclusive(request):
        started = time.perf_counter()
        previous: State | None = request.app.state.rag
        new = admin.reload(
            previous, settings.index_dir, _embedder(request, previous), settings.retriever, settings.milvus, _batching(request)
        )
        return _swap(request, "reload", previous, new, started)
