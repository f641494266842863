from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from rag.serve import service
from rag.serve.http.routes import errors, get_state
from rag.serve.state import State
from rag.serve.wire import SearchBody, SearchResponse, json_response

router = APIRouter(tags=["search"])


@router.post("/search", operation_id="search", response_model=SearchResponse, responses=errors(400, 413, 422))
def search(body: SearchBody, state: Annotated[State, Depends(get_state)]) -> Response:
    """Patterns that fit a situation (or a name), best first, with the sections that matched."""
    results = service.search(state, body.to_record())
    return json_response(SearchResponse.of(results, explain=body.explain))
