from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from rag.errors import EngineUnavailable
from rag.serve import service
from rag.serve.service import State
from rag.serve.wire import FacetsResponse, HealthResponse, StatsResponse
from rag.serve.http.routes import get_state

router = APIRouter(tags=["meta"])


@router.get("/facets", operation_id="facets", response_model=FacetsResponse)
def facets(state: Annotated[State, Depends(get_state)]) -> FacetsResponse:
    """Valid filter values (domains, contexts, statuses) with their pattern counts."""
    return FacetsResponse.of(state.version, service.facets(state))


@router.get("/health", operation_id="health", response_model=HealthResponse, response_model_exclude_none=True, responses={503: {"model": HealthResponse}})
def health(request: Request, response: Response) -> HealthResponse:
    """Up ("ok"), still opening the index ("loading"), unable to ("error"), or its engine unreachable
    ("degraded", 503 with Retry-After); with the index version, the engine, whether the model is loaded and
    on which device (cpu or cuda) it runs."""
    state = request.app.state.rag
    if state is None:
        failed = getattr(request.app.state, "load_error", None)
        return HealthResponse(status="error", detail=str(failed)) if failed is not None else HealthResponse(status="loading")
    engine = service.health(state)
    embedder = state.retriever.embedder
    ready = bool(getattr(embedder, "loaded", True))
    reachable = bool(engine.get("reachable", True))
    if not reachable:
        response.status_code = 503
        response.headers["Retry-After"] = str(EngineUnavailable.retry_after_s)
    return HealthResponse(
        status="ok" if reachable else "degraded",
        index_version=state.version,
        patterns=len(state.index.patterns),
        engine=str(engine.get("engine", state.index.manifest.engine)),
        reachable=reachable,
        model_ready=ready,
        device=getattr(embedder, "device", None) if ready else None,  # asked only once loaded: resolving imports torch
        query_encoder=getattr(embedder, "runtime", None),
    )


@router.get("/stats", operation_id="stats", response_model=StatsResponse)
def stats(state: Annotated[State, Depends(get_state)]) -> StatsResponse:
    """The served index: version, build time, model, counts, vector index and chunker settings."""
    return StatsResponse.model_validate(service.stats(state))
