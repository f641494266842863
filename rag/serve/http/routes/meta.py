from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from rag.serve import service
from rag.serve.service import State
from rag.serve.wire import FacetsResponse, HealthResponse, StatsResponse
from rag.serve.http.routes import get_state

router = APIRouter(tags=["meta"])


@router.get("/facets", operation_id="facets", response_model=FacetsResponse)
def facets(state: Annotated[State, Depends(get_state)]) -> FacetsResponse:
    """Valid filter values (domains, contexts, statuses) with their pattern counts."""
    return FacetsResponse.of(state.version, service.facets(state))


@router.get("/health", operation_id="health", response_model=HealthResponse, response_model_exclude_none=True)
def health(request: Request) -> HealthResponse:
    """Up ("ok", with the index version served), still opening the index ("loading"), or unable to ("error")."""
    state = request.app.state.rag
    if state is None:
        failed = getattr(request.app.state, "load_error", None)
        return HealthResponse(status="error", detail=str(failed)) if failed is not None else HealthResponse(status="loading")
    embedder = state.retriever.embedder
    return HealthResponse(
        index_version=state.version,
        patterns=len(state.index.patterns),
        model_ready=getattr(embedder, "loaded", True),
        engine=state.index.engine.health(),
    )


@router.get("/stats", operation_id="stats", response_model=StatsResponse)
def stats(state: Annotated[State, Depends(get_state)]) -> StatsResponse:
    """The served index: version, build time, model, counts, vector index and chunker settings."""
    return StatsResponse.model_validate(service.stats(state))
