"""The served `State` of an app: read once per request, replaced whole."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request

from rag.errors import IndexLoading
from rag.serve.metrics import served
from rag.serve.state import State

log = logging.getLogger(__name__)


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


GENERATION = ".serving"  # in the index folder: the build the workers of one server serve (written after a swap)
FOLLOW_S = 1.0  # how often a worker of `rag serve --workers N` checks it


def announce(index_dir: Path, version: str) -> None:
    """Tell the other workers of this server to serve `version` (atomically: a temporary file renamed over the old one)."""
    path = Path(index_dir) / GENERATION
    tmp = path.with_name(f"{GENERATION}.{os.getpid()}")
    try:
        tmp.write_text(version, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only index folder: the other workers keep their version until restarted
        log.warning("could not tell the other workers to serve %s: %s", version, exc)


def announced(index_dir: Path) -> str | None:
    try:
        return (Path(index_dir) / GENERATION).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def follow(app: FastAPI, reload: Callable[[State | None], State], stop: threading.Event) -> None:
    """A worker's loop: when another worker announced a build this one does not serve, load it and swap it in."""
    index_dir = app.state.settings.index_dir
    while not stop.wait(FOLLOW_S):
        wanted = announced(index_dir)
        current: State | None = app.state.rag
        if wanted is None or (current is not None and current.version == wanted):
            continue
        try:
            fresh = reload(current)
        except Exception as exc:  # noqa: BLE001 - logged; the next tick tries again
            log.warning("could not follow the announced build %s: %s", wanted, exc)
            continue
        if fresh is not current:
            swap_state(app, fresh)
            log.info("now serving index %s, as another worker announced", fresh.version)
