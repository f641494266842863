from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

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


@router.get("/health", operation_id="health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def health(state: Annotated[State, Depends(get_state)], response: Response) -> HealthResponse:
    """Up, with the index version being served, the engine and whether it is reachable (503 when it is not)."""
    engine = service.health(state)
    reachable = bool(engine.get("reachable", True))
    if not reachable:
        response.status_code = 503
        response.headers["Retry-After"] = str(EngineUnavailable.retry_after_s)
    return HealthResponse(status="ok" if reachable else "degraded", index_version=state.version, patterns=len(state.index.patterns),
                          engine=str(engine.get("engine", state.index.manifest.engine)), reachable=reachable)


@router.get("/stats", operation_id="stats", response_model=StatsResponse)
def stats(state: Annotated[State, Depends(get_state)]) -> StatsResponse:
    """The served index: version, build time, model, counts, vector index and chunker settings."""
    return StatsResponse.model_validate(service.stats(state))
