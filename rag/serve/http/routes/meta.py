from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from rag.errors import EngineUnavailable, IndexLoading
from rag.serve import service
from rag.serve.http.routes import get_state
from rag.serve.metrics import exposition
from rag.serve.state import State
from rag.serve.wire import FacetsResponse, HealthResponse, LiveResponse, ReadyResponse, StatsResponse

router = APIRouter(tags=["meta"])


@router.get("/facets", operation_id="facets", response_model=FacetsResponse)
def facets(state: Annotated[State, Depends(get_state)]) -> FacetsResponse:
    """Valid filter values (domains, contexts, statuses) with their pattern counts."""
    return FacetsResponse.of(state.version, service.facets(state))


@router.get(
    "/health",
    operation_id="health",
    response_model=HealthResponse,
    response_model_exclude_none=True,
    responses={503: {"model": HealthResponse}},
)
def health(request: Request, response: Response) -> HealthResponse:
    """Up ("ok"), still opening the index ("loading", 503), unable to ("error", 503), or its engine unreachable
    ("degraded", 503); with the index version, the engine, whether the model is loaded and on which device (cpu
    or cuda) it runs. Every status but "ok" answers 503 with Retry-After, so a probe reading the code is right."""
    body = _health(request)
    if body.status != "ok":
        _unavailable(response, body)
    return body


@router.get("/health/live", operation_id="health_live", response_model=LiveResponse)
def live() -> LiveResponse:
    """The process answers (a liveness probe): 200 whatever the index's state."""
    return LiveResponse()


@router.get("/health/ready", operation_id="health_ready", response_model=ReadyResponse, responses={503: {"model": ReadyResponse}})
def ready(request: Request, response: Response) -> ReadyResponse:
    """The server can search (a readiness probe): 200, else 503 with the reason and Retry-After."""
    body = _health(request)
    if body.status != "ok":
        _unavailable(response, body)
        return ReadyResponse(ready=False, status=body.status, reason=body.detail or _REASONS[body.status])
    return ReadyResponse(ready=True, status="ok", index_version=body.index_version)


_REASONS = {
    "loading": "the index is still loading",
    "error": "the index could not be loaded",
    "degraded": "the search engine is unreachable",
}


def _unavailable(response: Response, body: HealthResponse) -> None:
    response.status_code = 503
    retry = IndexLoading.retry_after_s if body.status == "loading" else EngineUnavailable.retry_after_s
    response.headers["Retry-After"] = str(retry)


def _health(request: Request) -> HealthResponse:
    state = request.app.state.rag
    if state is None:
        failed = request.app.state.load_error
        if failed is not None:
            return HealthResponse(status="error", detail=str(failed), worker=os.getpid())
        return HealthResponse(status="loading", worker=os.getpid())
    engine = state.index.engine.health()
    embedder = state.retriever.embedder
    loaded = embedder.loaded
    return HealthResponse(
        status="ok" if engine.reachable else "degraded",
        index_version=state.version,
        patterns=len(state.index.patterns),
        engine=engine.engine,
        reachable=engine.reachable,
        model_ready=loaded,
        device=embedder.device if loaded else None,  # asked only once loaded: resolving "auto" imports torch
        query_encoder=embedder.runtime,
        detail=engine.detail,
        worker=os.getpid(),
    )


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus metrics (text format): requests by route and status, latency, batch sizes, queue depth, the served
    index version and build time, encoder and engine errors. docs/operations.md has a scrape config."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@router.get("/stats", operation_id="stats", response_model=StatsResponse)
def stats(state: Annotated[State, Depends(get_state)]) -> StatsResponse:
    """The served index: version, build time, model, counts, vector index and chunker settings."""
    return StatsResponse.model_validate(service.stats(state))
