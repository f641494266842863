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
from pydantic import BaseModel, Field

from rag.serve import service
from rag.errors import IndexError_
from rag.serve.http.state import swap_state
from rag.serve.wire import ErrorResponse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])
bearer = HTTPBearer(auto_error=False, description="The server's admin token (RAG_ADMIN_TOKEN).")

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong admin token."},
    404: {"model": ErrorResponse, "description": "Admin operations are disabled (the server has no admin token)."},
    409: {"model": ErrorResponse, "description": "Another admin operation is running, a build holds the index lock, or there is no library to build from."},
}


class AdminResponse(BaseModel):
    action: Literal["reindex", "reload"]
    previous_version: str = Field(description="The index version served before.")
    index_version: str = Field(description="The index version served from now on.")
    changed: bool = Field(description="True when a different index version is now served.")
    build: dict[str, Any] | None = Field(None, description="reindex: the build summary (patterns, chunks encoded and reused, seconds per stage).")
    seconds: float


def require_admin(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    token = request.app.state.settings.admin_token
    if not token:
        raise HTTPException(404, "admin operations are disabled: start the server with RAG_ADMIN_TOKEN set to enable /admin/reindex and /admin/reload")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8")):
        raise HTTPException(401, "missing or wrong admin token: send `Authorization: Bearer <RAG_ADMIN_TOKEN>`", headers={"WWW-Authenticate": "Bearer"})


@contextlib.contextmanager
def _exclusive(request: Request) -> Iterator[None]:
    lock: threading.Lock = request.app.state.admin_lock
    if not lock.acquire(blocking=False):
        raise HTTPException(409, "another reindex or reload is running; retry when it has finished")
    try:
        yield
    except (IndexError_, service.RebuildError) as exc:
        raise HTTPException(409, f"{exc}; still serving the previous index") from exc
    finally:
        lock.release()


def _swap(request: Request, action: Literal["reindex", "reload"], previous: service.State, new: service.State, started: float, build: dict | None = None) -> AdminResponse:

    if new is not previous:
        swap_state(request.app, new)
        log.info("%s: now serving index %s (was %s)", action, new.version, previous.version)
    return AdminResponse(
        action=action,
        previous_version=previous.version,
        index_version=new.version,
        changed=new.version != previous.version,
        build=build,
        seconds=round(time.perf_counter() - started, 3),
    )


@router.post("/reindex", operation_id="reindex", response_model=AdminResponse, responses=RESPONSES, dependencies=[Depends(require_admin)])
def reindex(request: Request) -> AdminResponse:
    """Rebuild the index from its library (incremental: unchanged chunks reuse their vectors), then serve it."""
    settings = request.app.state.settings
    with _exclusive(request):
        started = time.perf_counter()
        previous: service.State = request.app.state.rag
        summary, new = service.rebuild(previous, settings.index_dir, settings.library, settings.cache_dir)
        return _swap(request, "reindex", previous, new, started, summary.to_dict())


@router.post("/reload", operation_id="reload", response_model=AdminResponse, responses=RESPONSES, dependencies=[Depends(require_admin)])
def reload(request: Request) -> AdminResponse:
    """Serve the index directory's `current` build (after `rag index` ran elsewhere), without building."""
    settings = request.app.state.settings
    with _exclusive(request):
        started = time.perf_counter()
        previous: service.State = request.app.state.rag
        return _swap(request, "reload", previous, service.reload(previous, settings.index_dir), started)
