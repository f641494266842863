from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from rag.serve import service
from rag.serve.service import State
from rag.serve.wire import SearchRequest, SearchResponse
from rag.serve.http.routes import errors, get_state

router = APIRouter(tags=["search"])


@router.post("/search", operation_id="search", response_model=SearchResponse, responses=errors(400, 413, 422))
def search(request: SearchRequest, state: Annotated[State, Depends(get_state)]) -> SearchResponse:
    """Patterns that fit a situation (or a name), best first, with the sections that matched."""
    results = service.search(state, request.query, request.k, request.filters.to_filters(), request.group_duplicates, request.offset, request.reader)
    return SearchResponse.of(results, explain=request.explain, offset=request.offset)
