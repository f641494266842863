from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from rag.load.library import SLUG_RE
from rag.search.filters import Filters
from rag.serve import service
from rag.serve.http.routes import errors, get_state
from rag.serve.state import State
from rag.serve.wire import PatternListResponse, PatternResponse, RelatedResponse, SimilarResponse

router = APIRouter(prefix="/patterns", tags=["patterns"])

SlugPath = Annotated[str, Path(pattern=SLUG_RE.pattern, description="A pattern slug, e.g. pull-based-replenishment.")]


@router.get("", operation_id="list_patterns", response_model=PatternListResponse, responses=errors(422))
def list_patterns(
    state: Annotated[State, Depends(get_state)],
    domain: Annotated[str | None, Query(description="Only this domain (see GET /facets).")] = None,
    context: Annotated[str | None, Query(description="Only patterns with a label in this context (see GET /facets).")] = None,
    status: Annotated[str | None, Query(description="Only this lifecycle status.")] = None,
    min_confidence: Annotated[
        float | None, Query(ge=0, le=1, allow_inf_nan=False, description="Lowest confidence, 0-1 (1.0 = five stars).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIST, description="Patterns per page.")] = 20,
    offset: Annotated[int, Query(ge=0, description="Patterns skipped (next_offset of the previous page).")] = 0,
) -> PatternListResponse:
    """Browse: a page of the patterns passing the filters, in title order, with the total count."""
    page = service.list_patterns(state, Filters(domain, context, status, min_confidence), limit, offset)
    return PatternListResponse.of(state.version, page)


@router.get("/{slug}", operation_id="get_pattern", response_model=PatternResponse, responses=errors(404, 422))
def get_pattern(
    slug: SlugPath,
    state: Annotated[State, Depends(get_state)],
    context: Annotated[str | None, Query(description="See the pattern from this context (its label for it is returned).")] = None,
) -> PatternResponse:
    """The whole normalized pattern, optionally seen from one context."""
    found, name, label = service.pattern(state, slug, context)
    return PatternResponse.of(state.version, found, name, label)


@router.get("/{slug}/related", operation_id="related", response_model=RelatedResponse, responses=errors(404, 422))
def related(slug: SlugPath, state: Annotated[State, Depends(get_state)]) -> RelatedResponse:
    """Curated relationships in both directions, typed and weighted, heaviest first; `dangling` counts
    curated targets outside the library."""
    found, edges = service.related(state, slug)
    return RelatedResponse.of(state.version, found, edges, state.graph.dangling_of(found.slug))


@router.get("/{slug}/similar", operation_id="similar", response_model=SimilarResponse, responses=errors(404, 422))
def similar(
    slug: SlugPath,
    state: Annotated[State, Depends(get_state)],
    k: Annotated[int, Query(ge=1, le=service.MAX_SIMILAR, description="Number of patterns.")] = 10,
    domain: Annotated[str | None, Query()] = None,
    context: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    min_confidence: Annotated[
        float | None, Query(ge=0, le=1, allow_inf_nan=False, description="Lowest confidence, 0-1 (1.0 = five stars).")
    ] = None,
) -> SimilarResponse:
    """More like this: patterns nearest to this one's mean section vector."""
    found, nearest = service.more_like(state, slug, k, Filters(domain, context, status, min_confidence))
    return SimilarResponse.of(state.version, found, nearest)
