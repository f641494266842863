"""Helpers for the browser tests of the analyst page: the app with the web router, a real server, Chromium.

The browser is Debian's `chromium` (installed here when absent and possible, as the issue asks: in CI
these tests run, they do not skip), driven by Playwright's Python package with `executable_path`,
so `playwright install` never downloads a browser. Every request a page makes is recorded, and so is
every console error, so a test can assert that nothing left 127.0.0.1 and nothing went wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path(os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium"))
APT_PACKAGES = ("chromium",)
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
)


# -- the code under test, wherever the stage packages have put it ----------------------------------
def create_app_fn():
    try:
        from rag.serve.http.app import create_app
    except ImportError:
        from rag.api import create_app
    return create_app


def settings_cls():
    from rag.config import Settings

    return Settings


def new_encoder():
    try:
        from rag.embedding.minilm import MiniLMEncoder
    except ImportError:
        from rag.embedding import Embedder as MiniLMEncoder
    return MiniLMEncoder()


def build(library: Path, index_dir: Path, cache_dir: Path, encoder) -> None:
    try:
        from rag.index.build import build_index
    except ImportError:
        from rag.indexer import build_index
    try:
        from rag.config import BuildSettings
    except ImportError:
        try:
            from rag.index.build import BuildSettings
        except ImportError:
            from rag.indexer import BuildSettings
    build_index(BuildSettings(library, index_dir, cache_dir=cache_dir), encoder)


def web_app(index_dir: Path, encoder):
    """The API app for `index_dir` with the web router in front of FastAPI's CDN-based docs."""
    from rag.serve import web

    settings = settings_cls()(index_dir=index_dir)
    app = create_app_fn()(settings, embedder=encoder)
    if not any(getattr(route, "endpoint", None) is web.routes.search_page for route in app.router.routes):
        # Until the app is built with docs_url=None, its own /docs and /redoc (CDN assets) come first: drop them.
        app.router.routes[:] = [
            r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/docs/oauth2-redirect", "/redoc")
        ]
        app.include_router(web.router)
    return app


# -- a real server ---------------------------------------------------------------------------------
def serve(app, host: str = "127.0.0.1", startup_timeout: float = 120.0):
    """Run `app` under uvicorn in a background thread; yields its base URL (the load generator's server)."""
    from bench.loadgen import serve_in_thread

    return serve_in_thread(app, host=host, startup_timeout=startup_timeout)


# -- the browser -----------------------------------------------------------------------------------
def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when absent and this process may; otherwise a clear error."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update"], check=False, env=env, capture_output=True)
        done = subprocess.run([apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES], env=env, capture_output=True, text=True)
        if done.returncode == 0 and CHROMIUM.exists():
            return CHROMIUM
        raise RuntimeError(f"apt-get install {' '.join(APT_PACKAGES)} failed: {done.stderr[-800:]}")
    raise RuntimeError(f"no browser at {CHROMIUM}: run `apt-get install -y {' '.join(APT_PACKAGES)}` as root (or set RAG_TEST_CHROMIUM)")


@dataclass
class Recorder:
    """Every request URL and every console error or uncaught exception of the pages of one browser context."""

    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on(
            "console",
            lambda msg: (
                self.errors.append(f"console.{msg.type}: {msg.text} ({msg.location.get('url', '')})") if msg.type == "error" else None
            ),
        )
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def outside(self) -> list[str]:
        """Requests that did not go to this server (data: URLs and this origin's blob: URLs never leave the page)."""
        local = (self.base + "/", f"blob:{self.base}/", "data:")
        return [url for url in self.requests if not (url == self.base or url.startswith(local))]

    def reset(self) -> None:
        self.requests.clear()
        self.errors.clear()
