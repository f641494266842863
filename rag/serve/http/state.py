"""The served `State` of an app: read once per request, replaced whole."""

from __future__ import annotations

from fastapi import FastAPI, Request

from rag.serve.service import State


def get_state(request: Request) -> State:
    """The state serving this request, read once, so the whole request sees one index version."""
    return request.app.state.rag


def swap_state(app: FastAPI, new: State) -> State:
    """Serve `new` from the next request on (one reference assignment); returns the previous state."""
    old = app.state.rag
    app.state.rag = new
    return old


