from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from rag.serve import service
from rag.serve.service import State
from rag.serve.wire import FacetsResponse, HealthResponse, StatsResponse
from rag.serve.http.routes import get_state

router = APIRouter(tags=["meta"])


@router.get("/facets", operation_id="facets", response_model=FacetsResponse)
def facets(state: Annotated[State, Depends(get_state)]) -> FacetsResponse:
    """Valid filter values (domains, contexts, statuses) with their pattern counts."""
    return FacetsResponse.of(state.version, service.facets(state))


@router.get("/health", operation_id="health", response_model=HealthResponse)
def health(state: Annotated[State, Depends(get_state)]) -> HealthResponse:
    """Up, with the index version being served."""
    return HealthResponse(index_version=state.version, patterns=len(state.index.patterns))


@router.get("/stats", operation_id="stats", response_model=StatsResponse)
def stats(state: Annotated[State, Depends(get_state)]) -> StatsResponse:
    """The served index: version, build time, model, counts, vector index and chunker settings."""
    return StatsResponse.model_validate(service.stats(state))
