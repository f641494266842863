"""The analyst page and offline API docs, as one router the app includes (`app.include_router(router)`).

The page is one HTML shell (`static/index.html`) for both `/` (search) and `/p/{slug}` (a pattern);
`static/app.js` renders either from the URL by calling the JSON API only (`/search`, `/facets`,
`/patterns/...`, `/health`), so the page and the agents read the same answers. Nothing is built and
nothing comes from a CDN: the shell, its script and its stylesheet are package files, and the page is
served with a Content-Security-Policy that allows this origin only.

`/docs` (Swagger UI 5) and `/redoc` (ReDoc 2) load their bundles from the files of the PyPI package
`fastapi-standalone-docs` (its static folder only; its monkeypatching `StandaloneDocs` is not used),
so they work without internet. The app turns its own docs off (`FastAPI(docs_url=None, redoc_url=None)`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).parent / "static"
SHELL = STATIC / "index.html"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "swagger",
    "swagger-ui.css": "swagger",
    "redoc.standalone.js": "redoc",
    "logo-mini.svg": "redoc",
    "favicon.png": "fastapi",
}
DOCS_PACKAGE = "fastapi-standalone-docs"

# The page talks to this origin only: no inline script, no CDN, no external font.
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

router = APIRouter(include_in_schema=False)


def _shell() -> HTMLResponse:
    return HTMLResponse(SHELL.read_text(encoding="utf-8"), headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"})


@router.get("/", response_class=HTMLResponse)
def search_page() -> HTMLResponse:
    """The search page; its state is the query string (`?q=&domain=&context=&status=&min_confidence=&group=`)."""
    return _shell()


@router.get("/p/{slug}", response_class=HTMLResponse)
def pattern_page(slug: str) -> HTMLResponse:
    """One pattern (`?context=` picks the reader); the script asks `/patterns/{slug}` and reports an unknown slug."""
    return _shell()


@router.get("/web/{name}")
def page_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no page asset {name!r}; the page has {', '.join(sorted(ASSETS))}")
    return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


# -- offline API docs ---------------------------------------------------------------------------
def _docs_static() -> Path:
    try:
        import fastapi_standalone_docs
    except ImportError as exc:
        raise HTTPException(503, f"the offline docs need the package {DOCS_PACKAGE}: pip install {DOCS_PACKAGE}") from exc
    return Path(fastapi_standalone_docs.__file__).parent / "static"


def _openapi_url(request: Request) -> str:
    if not request.app.openapi_url:
        raise HTTPException(404, "this app publishes no OpenAPI schema")
    return request.scope.get("root_path", "").rstrip("/") + request.app.openapi_url


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    _docs_static()  # fail with the package to install rather than with a blank page
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon.png",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
    )


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    _docs_static()
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}/redoc/assets/redoc.standalone.js",
        redoc_favicon_url=f"{root}/redoc/assets/favicon.png",
        with_google_fonts=False,
    )


@router.get("/docs/assets/{name}")
@router.get("/redoc/assets/{name}")
def docs_asset(name: str) -> FileResponse:
    folder = DOCS_ASSETS.get(name)
    if folder is None:
        raise HTTPException(404, f"no docs asset {name!r}")
    return FileResponse(_docs_static() / folder / name, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/redoc/logo-mini.svg")
def redoc_logo() -> FileResponse:
    """The package rewrote ReDoc's CDN logo URL to `<page path>/logo-mini.svg`."""
    return docs_asset("logo-mini.svg")
