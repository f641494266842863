"""The served `State` of an app: read once per request, replaced whole."""

from __future__ import annotations

from fastapi import FastAPI, Request

from rag.errors import IndexLoading
from rag.serve.metrics import served
from rag.serve.state import State


def get_state(request: Request) -> State:
    """The state serving this request, read once, so the whole request sees one index version.

    While a server started with `background_load` is still opening its index this raises IndexLoading
    (503 with Retry-After), or the error that stopped the load."""
    state = request.app.state.rag
    if state is None:
        failed = request.app.state.load_error
        if failed is not None:
            raise failed
        raise IndexLoading()
    return state


def swap_state(app: FastAPI, new: State) -> State | None:
    """Serve `new` from the next request on (one reference assignment); returns the previous state (None when none was
    served: a first load, or a recovery after the first load failed). /metrics names the served version from now on."""
    old = app.state.rag
    app.state.rag = new
    app.state.load_error = None
    served(new.version, new.index.manifest.engine, new.index.manifest.built_at)
    return old
