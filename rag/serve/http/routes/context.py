from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from rag.serve import service
from rag.serve.http.routes import errors, get_state
from rag.serve.state import State
from rag.serve.wire import ContextRequest, ContextResponse

router = APIRouter(tags=["context"])


@router.post("/context", operation_id="context_pack", response_model=ContextResponse, responses=errors(400, 413, 422))
def context_pack(request: ContextRequest, state: Annotated[State, Depends(get_state)]) -> ContextResponse:
    """The best sections of the best patterns within a token budget (Solution and Problem first), each passage cited slug#section."""
    pack = service.context_pack(state, request.query, request.budget_tokens, request.filters.to_filters(), request.patterns)
    return ContextResponse.of(pack)
