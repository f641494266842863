"""The Python API on the fake encoder: `rag.open_index` answers what the service answers, `rag.Client` answers the
same records and raises the same typed errors over real HTTP (a uvicorn server on a free port), `import rag` stays
light, and the client's transport failures are typed. The real model's turn is tests/integration/test_python_api.py."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rag
from bench.loadgen import free_port, serve_in_thread
from rag.api.client import error
from rag.config import Settings
from rag.errors import ConfigError, EngineUnavailable, IndexError_, IndexLoading, QueryError, UnknownFilterValue
from rag.records.request import SearchRequest
from rag.serve import service
from rag.serve.http import create_app
from rag.serve.state import State
from support import REPO, SHELVES
from support.api_cases import CALLS, ERRORS, as_json, assert_same_error, call, ids


@pytest.fixture(scope="module")
def state(fake_index_dir, fake_encoder):
    return State.load(fake_index_dir, fake_encoder, warm=False)


@pytest.fixture(scope="module")
def index(fake_index_dir, fake_encoder):
    return rag.open_index(fake_index_dir, encoder=fake_encoder)


@pytest.fixture(scope="module")
def client(fake_index_dir, state):
    with serve_in_thread(create_app(Settings(index_dir=fake_index_dir), state=state)) as url:
        yield rag.Client(url)


# -- the package's surface -------------------------------------------------------------------------
def test_import_rag_loads_nothing_heavy_and_every_public_name_resolves():
    code = (
        "import sys, rag\n"
        "heavy = ('torch', 'faiss', 'fastapi', 'numpy')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "[getattr(rag, name) for name in rag.__all__]\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    bare, resolved = out.stdout.splitlines()
    assert bare == "[]"
    assert resolved == "['numpy']"  # the records of listings and graphs hold numpy; never torch, FAISS or FastAPI


def test_the_type_stub_names_what_all_names():
    stub = ast.parse((REPO / "rag" / "__init__.pyi").read_text())
    stubbed = {alias.asname for node in stub.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert stubbed | {"__version__"} == set(rag.__all__)
    with pytest.raises(AttributeError, match="no attribute 'open_indx'"):
        rag.open_indx  # noqa: B018


# -- in process ------------------------------------------------------------------------------------
def test_search_answers_what_the_service_answers(index, state):
    results = index.search(SHELVES, 3, reader="government")
    answered = service.search(state, SearchRequest(SHELVES, 3, reader="government"))
    assert results.slugs[0] == "pull-based-replenishment"
    assert results.hits[0].context == "government" and results.hits[0].evidence[0].chunk_id.startswith("pull-based-replenishment#")
    assert results == replace(answered, fusion={}, timings_ms={}, hits=tuple(replace(h, retrievers={}) for h in answered.hits))
    explained = index.search(SHELVES, 3, reader="government", explain=True)
    assert explained.fusion == answered.fusion and explained.hits == answered.hits
    assert explained.hits[0].retrievers and explained.timings_ms


def test_a_pattern_comes_whole_and_seen_from_a_context(index, state):
    shown = index.pattern("pull-based-replenishment", context=" Activist ")
    assert isinstance(shown.pattern.sections, tuple) and len(shown.pattern.sections) == 8
    assert shown.pattern.section("solution").text == state.index.pattern("pull-based-replenishment").section("solution").text
    assert shown.context == "activist"
    assert shown.context_label == shown.pattern.context_label("activist") and shown.context_label
    assert shown.index_version == index.index_version == state.version


def test_filters_are_a_record_or_a_mapping(index):
    page = index.list_patterns({"domain": "Operations"}, limit=50)
    assert page == index.list_patterns(rag.Filters(domain="operations"), limit=50)
    assert page.total == len(page.patterns) > 0 and all("operations" in p.domains for p in page.patterns)
    assert page.filters["domain"] == "operations"
    with pytest.raises(QueryError, match="filters must be a rag.Filters or a mapping") as caught:
        index.search(SHELVES, filters=["operations"])
    assert caught.value.field == "filters"


def test_related_and_similar_name_the_asked_pattern(index, state):
    related = index.related("pull-based-replenishment")
    assert (related.slug, related.title) == ("pull-based-replenishment", "Pull-Based Replenishment")
    assert related.related == state.graph.related("pull-based-replenishment") and related.related
    similar = index.similar("pull-based-replenishment", 3, filters={"domain": "finance"})
    assert len(similar.similar) == 3 and "pull-based-replenishment" not in [s.slug for s in similar.similar]
    assert all("finance" in index.pattern(s.slug).pattern.domains for s in similar.similar)


# -- over HTTP -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CALLS, ids=ids)
def test_the_client_answers_what_the_opened_index_answers(index, client, case):
    assert call(client, *case) == call(index, *case)


def test_an_explained_search_carries_the_same_ranks_and_scores(index, client):
    local, remote = index.search(SHELVES, 5, explain=True), client.search(SHELVES, 5, explain=True)
    assert remote.hits == local.hits and remote.hits[0].retrievers
    assert remote.fusion == as_json(local.fusion)
    assert set(local.timings_ms) <= set(remote.timings_ms)  # the server adds its micro-batcher's


@pytest.mark.parametrize("case", ERRORS, ids=ids)
def test_the_client_raises_the_errors_the_opened_index_raises(index, client, case):
    assert_same_error(index, client, case)


def test_a_suggestion_comes_back_for_a_misspelt_slug(client):
    with pytest.raises(rag.PatternNotFound) as caught:
        client.related("pull-based-replenishmnt")
    assert caught.value.suggestions == ["pull-based-replenishment"]
    assert caught.value.slug == "pull-based-replenishmnt"


def test_an_unreachable_server_is_typed_and_names_the_url():
    client = rag.Client(f"127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(rag.ServerUnreachable, match=r"cannot reach the server at http://127\.0\.0\.1:\d+") as caught:
        client.facets()
    assert isinstance(caught.value, EngineUnavailable) and caught.value.field == "url"


@pytest.mark.parametrize("url", ["", "ftp://host", "http://"])
def test_a_url_that_is_not_one_is_refused(url):
    with pytest.raises(ConfigError, match="must be an http\\(s\\) URL") as caught:
        rag.Client(url)
    assert caught.value.field == "url"


class _NotRag(BaseHTTPRequestHandler):
    """Any server but a `rag serve`: 200 with other JSON for /facets and /search, 404 with HTML elsewhere."""

    def _answer(self) -> None:
        if self.path.startswith(("/search", "/facets")):
            body, status, kind = json.dumps({"hello": 1, "domains": [{"name": "x"}]}).encode(), 200, "application/json"
        else:
            body, status, kind = b"<html>not here</html>", 404, "text/html"
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def not_rag():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotRag)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield rag.Client(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


@pytest.mark.parametrize("ask", [lambda c: c.search(SHELVES), lambda c: c.facets(), lambda c: c.pattern("time-banking")])
def test_a_server_that_is_not_a_rag_serve_is_a_server_error(not_rag, ask):
    with pytest.raises(rag.ServerError, match="is it a `rag serve` of this version") as caught:
        ask(not_rag)
    assert caught.value.field == "url"


def body(detail, field=None, **extra) -> bytes:
    return json.dumps({"detail": detail, "field": field, **extra}).encode()


@pytest.mark.parametrize(
    ("status", "retry", "raw", "kind", "field"),
    [
        (503, "2", body("the index is still loading; retry in a few seconds", "index"), IndexLoading, "index"),
        (503, "5", body("milvus at http://m:19530 is unreachable", "index"), EngineUnavailable, "index"),
        (503, None, body("no index in x: build one", "index"), IndexError_, "index"),
        (500, None, body("internal error (a bug, logged on the server); the request may be retried"), rag.ServerError, "url"),
        (413, None, body("request body too large: 2000000 bytes; the limit is 1000000", None), QueryError, "body"),
        (422, None, body("unknown domain 'x'; valid values: a, b", "filters.domain", valid=["a", "b"]), UnknownFilterValue, "domain"),
        (502, None, b"<html>bad gateway</html>", rag.ServerError, "url"),
    ],
)
def test_error_bodies_become_the_typed_errors(status, retry, raw, kind, field):
    exc = error("http://h:1", "/search", status, retry, raw, {"domain": "x"})
    assert type(exc) is kind and exc.field == field
    detail = json.loads(raw).get("detail") if raw.startswith(b"{") else None
    if detail and kind is not rag.ServerError:
        assert str(exc) == detail
    if kind is rag.ServerError:
        assert "http://h:1" in str(exc) and str(status) in str(exc)


# -- the query encoder an index names --------------------------------------------------------------
@pytest.fixture
def adapted_index(tmp_path, fake_index_dir):
    """A copy of the fake index whose manifest names an adapted model folder (`rag adapt`), not yet there."""
    import shutil

    from rag.index.store import current_build

    index_dir = tmp_path / "index"
    shutil.copytree(fake_index_dir, index_dir, symlinks=True)
    manifest = current_build(index_dir) / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "model_path": str(tmp_path / "model")}))
    return index_dir, tmp_path / "model"


def test_the_model_an_index_names_is_found_or_its_absence_said(adapted_index, fake_index_dir, tmp_path):
    from typer.testing import CliRunner

    from rag.api.encoder import index_model_path
    from rag.cli.app import app

    index_dir, model = adapted_index
    assert index_model_path(fake_index_dir) is None  # the base model
    assert index_model_path(tmp_path / "nothing-here") is None  # opening it says why
    with pytest.raises(rag.IndexError_, match="no index in .*nothing-here: build one with `rag index LIBRARY"):
        rag.open_index(tmp_path / "nothing-here")
    with pytest.raises(rag.IndexError_, match=f"built with the adapted model {model}, which is gone; restore it or rebuild") as caught:
        rag.open_index(index_dir)
    assert caught.value.field == "index"
    result = CliRunner().invoke(app, ["search", SHELVES, "--index-dir", str(index_dir)])
    assert result.exit_code == 2 and f"error: {index_dir} was built with the adapted model {model}, which is gone" in result.output
    model.mkdir()
    assert index_model_path(index_dir) == model
