"""The Milvus engine against a real Milvus (Lite 2.5.1 started by the session fixture, or $RAG_MILVUS_URI):
build, parity with the embedded engine, every filter, the swap under concurrent queries, incremental builds,
faults through the HTTP app, and `rag index --engine milvus` + `rag eval` through the CLI.

Builds reuse the session embedding cache; the filter tests use the fake encoder on a tiny library whose
metadata varies on every filter field.
"""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.errors import StorageError
from support import PATTERNS, SHELVES, front_matter, topic_body, write_pattern

pytest_plugins = ["support.milvus_fixtures"]

QUERIES = (
    SHELVES,
    "member-owned",
    "we keep starting work and finishing nothing",
    "how do we share the books with everyone",
    "time banking",
    "decisions take forever because everyone must agree",
    "open book management",
    "tool library",
)


@pytest.fixture(scope="session")
def milvus_settings(milvus, milvus_prefix):
    from rag.config import MilvusSettings

    return MilvusSettings(uri=milvus.uri, token=milvus.token, timeout_s=2, prefix=milvus_prefix)


def build(library: Path, index_dir: Path, encoder, settings, cache_dir=None, **extra):
    from rag.config import BuildSettings
    from rag.index.build import build_index

    return build_index(BuildSettings(library, index_dir, cache_dir=cache_dir, engine="milvus", milvus=settings, **extra), encoder)


def client_of(settings):
    from rag.index.milvus.client import connect

    return connect(settings)


@pytest.fixture(scope="session")
def milvus_index_dir(tmp_path_factory, embedder, embedding_cache_dir, milvus_settings) -> Path:
    index_dir = tmp_path_factory.mktemp("milvus-index")
    build(PATTERNS, index_dir, embedder, milvus_settings, embedding_cache_dir)
    return index_dir


@pytest.fixture(scope="session")
def milvus_retriever(milvus_index_dir, embedder, milvus_settings):
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    return Retriever(SearchIndex.open(milvus_index_dir, milvus=milvus_settings), embedder)


# -- build --------------------------------------------------------------------------------------------
def test_build_writes_two_collections_and_a_local_manifest(milvus_index_dir, milvus_retriever, milvus_settings):
    index = milvus_retriever.index
    m = index.manifest
    assert (m.engine, m.counts.patterns, m.counts.chunks) == ("milvus", 25, len(index.chunks))
    assert (
        m.milvus.uri == milvus_settings.uri
        and m.milvus.prefix == milvus_settings.prefix
        and m.milvus.analyzer == {"tokenizer": "whitespace"}
    )
    assert m.milvus.chunks.endswith("_chunks") and m.milvus.patterns.endswith("_patterns") and m.milvus.truncated == 0
    files = {p.name for p in (milvus_index_dir / "current").iterdir()}
    # no FAISS or bm25s files: only the full-text postings that query coverage reads locally
    assert files == {
        "manifest.json",
        "patterns.jsonl",
        "chunks.jsonl",
        "chunks-skipped.jsonl",
        "problems.jsonl",
        "hub-prior.npy",
        "core-norms.npy",
        "postings-fulltext.npz",
    }
    client = client_of(milvus_settings)
    counts = [
        client.query(name, filter="", output_fields=["count(*)"], timeout=5)[0]["count(*)"] for name in (m.milvus.chunks, m.milvus.patterns)
    ]
    assert counts == [len(index.chunks), 25]
    assert index.engine.health().reachable is True


def test_alias_is_moved_where_the_server_has_aliases(milvus_retriever, milvus):
    record = milvus_retriever.index.manifest.milvus
    if milvus.server is not None:  # Milvus Lite answers UNIMPLEMENTED: the local current link is the cut-over
        assert record.alias is None
    else:
        client = client_of(milvus_retriever.index.engine.settings)
        assert client.describe_alias(record.alias["chunks"], timeout=5)["collection_name"] == record.chunks


# -- parity with the embedded engine ------------------------------------------------------------------
def assert_same_ranking(got, want, rtol=1e-4):
    """Same length and scores, same rows except which of several equal scores at the cut came back."""
    assert len(got) == len(want)
    np.testing.assert_allclose(got.scores, want.scores, rtol=rtol)
    if len(want):
        above = want.scores > want.scores[-1] * (1 + rtol)
        assert got.rows[above].tolist() == want.rows[above].tolist()


def test_search_parity_with_the_embedded_engine(retriever, milvus_retriever):
    from rag.search.retriever import Retriever

    # the convex fusion is exactly the same on both engines; the learned fusion's coverage feature is approximate on
    # Milvus (no token sets there), so there the first hit must agree and the top 10 mostly
    convex = retriever.settings.with_(fusion="convex")
    exact_m = Retriever(milvus_retriever.index, milvus_retriever.embedder, convex)
    exact_e = Retriever(retriever.index, retriever.embedder, convex)
    for query in QUERIES:
        learned_m, learned_e = milvus_retriever.search(query, 10), retriever.search(query, 10)
        assert learned_m.hits[0].slug == learned_e.hits[0].slug, query
        assert len({h.slug for h in learned_m.hits} & {h.slug for h in learned_e.hits}) >= 8, query
        ours, theirs = exact_m.search(query, 10), exact_e.search(query, 10)
        assert [h.slug for h in ours.hits] == [h.slug for h in theirs.hits], query
        assert [h.score for h in ours.hits] == pytest.approx([h.score for h in theirs.hits], abs=1e-4)
        assert [e.chunk_id for e in ours.hits[0].evidence] == [e.chunk_id for e in theirs.hits[0].evidence]


def test_each_signal_returns_the_embedded_rows_and_scores(search_index, milvus_retriever, embedder):
    from rag.index.engine import Selection
    from rag.index.lexical import analyze
    from rag.records.filters import Filters

    EVERYTHING = Selection(Filters())

    mine, theirs = milvus_retriever.index.engine, search_index.engine
    for query in QUERIES:
        tokens = analyze(query)
        for field in ("keywords", "fulltext", "passages"):
            assert_same_ranking(
                mine.lexical(field, tokens, 50, EVERYTHING), theirs.lexical(field, tokens, 50, EVERYTHING)
            )  # BM25 / (k1 + 1) == bm25s
        vector = embedder.encode_query(query)[None, :]
        a, b = mine.dense(vector, 30, EVERYTHING)[0], theirs.dense(vector, 30, EVERYTHING)[0]
        assert a.rows.tolist() == b.rows.tolist()
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    rows = search_index.chunk_rows(3)
    np.testing.assert_allclose(mine.passage_scores(analyze(SHELVES), rows), theirs.passage_scores(analyze(SHELVES), rows), rtol=1e-4)
    for query in QUERIES:  # what the learned fusion reads: every pattern's BM25, coverage, chunk similarities
        tokens = analyze(query)
        for field in ("keywords", "fulltext"):
            np.testing.assert_allclose(
                mine.lexical_scores(field, tokens, EVERYTHING), theirs.lexical_scores(field, tokens, EVERYTHING), rtol=1e-4, atol=1e-6
            )
        np.testing.assert_array_equal(mine.coverage(tokens), theirs.coverage(tokens))  # the same postings: exactly equal
        vector = embedder.encode_query(query)
        chunks = np.arange(len(search_index.chunks))
        np.testing.assert_allclose(mine.chunk_similarities(vector, chunks), theirs.chunk_similarities(vector, chunks), atol=1e-5)
    np.testing.assert_allclose(mine.chunk_vectors(rows), theirs.chunk_vectors(rows), atol=1e-6)


def test_more_like_this_matches_the_embedded_engine(search_index, milvus_retriever):
    from rag.search.graph import similar

    for slug in ("time-banking", "pull-based-replenishment"):
        ours, theirs = similar(milvus_retriever.index, slug, 5), similar(search_index, slug, 5)
        assert [(s.slug, s.chunk_id) for s in ours] == [(s.slug, s.chunk_id) for s in theirs]
        assert [s.score for s in ours] == pytest.approx([s.score for s in theirs], abs=1e-5)


# -- every filter: full k under a selective filter, 100% compliance -----------------------------------------
FILTER_LIBRARY = [  # slug, topic, domains, contexts, status, confidence
    (f"p{i:02d}", topic, doms, ctxs, status, conf)
    for i, (topic, doms, ctxs, status, conf) in enumerate(
        [
            ("keeping honey bees", ["farming"], ["activist"], "stable", 4.0),
            ("repairing bicycles together", ["repair", "community"], ["activist", "tech"], "draft", 2.0),
            ("baking sourdough bread", ["food"], [], "stable", None),
            ("sharing tools in a library", ["community"], ["government"], "deprecated", 3.5),
            ("keeping bees on city roofs", ["farming", "community"], ["tech"], "draft", 4.5),
            ("fixing bicycles for neighbours", ["repair"], ["activist"], "stable", 1.0),
            ("bread and shared ovens", ["food", "community"], ["activist", "government"], "stable", 3.0),
            ("tool sharing and repair cafes", ["repair"], [], "draft", None),
            ("honey bees and pollination", ["farming"], ["government"], "stable", 5.0),
            ("community bicycle workshops", ["community"], ["tech", "activist"], "deprecated", 2.5),
        ]
    )
]


@pytest.fixture(scope="module")
def filter_engines(tmp_path_factory, fake_encoder, milvus_settings):
    """The same tiny library on both engines (fake encoder): the embedded engine's masks are the oracle."""
    from rag.config import BuildSettings
    from rag.index.build import build_index
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    library = tmp_path_factory.mktemp("filter-library")
    for slug, topic, doms, ctxs, status, conf in FILTER_LIBRARY:
        ontology = {"domain": doms[0], "cross_domains": doms[1:]}
        lifecycle = {"status": status, **({"confidence": conf} if conf is not None else {})}
        labels = {c: f"{topic} for {c} readers" for c in ctxs}
        write_pattern(
            library,
            slug,
            front_matter(
                slug,
                title=topic.title(),
                summary=f"About {topic}.",
                ontology=ontology,
                lifecycle=lifecycle,
                **({"context_labels": labels} if labels else {}),
            ),
            topic_body(topic),
        )
    out = {}
    for engine in ("embedded", "milvus"):
        index_dir = tmp_path_factory.mktemp(f"filter-{engine}")
        build_index(BuildSettings(library, index_dir, engine=engine, milvus=milvus_settings if engine == "milvus" else None), fake_encoder)
        out[engine] = Retriever(SearchIndex.open(index_dir, milvus=milvus_settings), fake_encoder)
    return out


FILTERS = [
    dict(domain="farming"),
    dict(domain="community"),
    dict(context="government"),
    dict(context="tech"),
    dict(status="draft"),
    dict(status="deprecated"),
    dict(min_confidence=0.8),
    dict(min_confidence=0.0),
    dict(domain="community", context="activist"),
    dict(domain="repair", status="stable", min_confidence=0.2),
    dict(domain="food", context="tech"),
]


def complies(pattern, f: dict) -> bool:
    c = pattern.lifecycle.confidence
    return (
        (not f.get("domain") or f["domain"] in {d.lower() for d in pattern.domains})
        and (not f.get("context") or f["context"] in pattern.contexts)
        and (not f.get("status") or f["status"] == pattern.lifecycle.status)
        and (f.get("min_confidence") is None or (c is not None and c >= f["min_confidence"]))
    )


@pytest.mark.parametrize("given", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_every_filter_full_k_and_compliance(filter_engines, fake_encoder, given):
    from rag.index.lexical import analyze
    from rag.records.filters import Filters

    milvus, embedded = filter_engines["milvus"], filter_engines["embedded"]
    index = milvus.index
    filters = Filters(**given)
    selection = milvus.selection(filters)
    matching = [p for p in index.patterns if complies(p, given)]
    assert int(selection.patterns.sum()) == len(matching)  # the oracle agrees with the metadata
    chunk_count = int(selection.chunks.sum())
    vector = fake_encoder.encode_query("bees bicycles bread tools")[None, :]
    for k in (1, 3, 1000):
        dense = milvus.index.engine.dense(vector, k, selection)[0]
        assert len(dense) == min(k, chunk_count), (given, k)  # full k, pre-filtered
        assert all(complies(index.patterns[index.chunk_pattern[r]], given) for r in dense.rows)
        assert_same_ranking(dense, embedded.index.engine.dense(vector, k, embedded.selection(filters))[0], rtol=1e-5)
        for field in ("keywords", "fulltext", "passages"):
            tokens = analyze("keeping bees bicycles bread sharing tools community")
            got = milvus.index.engine.lexical(field, tokens, k, selection)
            want = embedded.index.engine.lexical(field, tokens, k, embedded.selection(filters))
            assert_same_ranking(got, want)
            rows = got.rows if field != "passages" else index.chunk_pattern[got.rows]
            assert all(complies(index.patterns[r], given) for r in rows)
    results = milvus.search("bees bicycles bread tools", 10, filters)
    assert len(results.hits) == min(10, len(matching))
    assert {h.slug for h in results.hits} <= {p.slug for p in matching}
    # learned scores use an approximate coverage on Milvus (see the parity test): close, not identical
    assert [h.score for h in results.hits] == pytest.approx(
        [h.score for h in embedded.search("bees bicycles bread tools", 10, filters).hits], rel=0.15
    )


# -- the swap under concurrent queries ------------------------------------------------------------------
def test_swap_under_concurrent_queries_each_response_from_one_build(tmp_path, embedder, embedding_cache_dir, milvus_settings):
    from rag.records.request import SearchRequest
    from rag.serve import admin, service
    from rag.serve.state import State

    library = tmp_path / "library"
    shutil.copytree(PATTERNS, library)
    held = library / "pull-based-replenishment.md"
    moved = held.read_text(encoding="utf-8")
    held.unlink()  # build A lacks it, build B has it
    index_dir = tmp_path / "index"
    build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
    state = State.load(index_dir, embedder, milvus=milvus_settings)
    has_it = {state.version: False}
    seen: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        current = state
        while not stop.is_set():
            try:
                current = admin.reload(current, index_dir, embedder, milvus=milvus_settings)
                results = service.search(current, SearchRequest(SHELVES, 5))
                assert results.index_version == current.version
                seen.append((results.index_version, "pull-based-replenishment" in {h.slug for h in results.hits}))
            except BaseException as exc:  # noqa: BLE001 - any failure fails the test below
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.5)
        for present in (True, False, True):  # three swaps: the third prunes build A's collections
            if present:
                held.write_text(moved, encoding="utf-8")
            else:
                held.unlink()
            summary = build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
            has_it[summary.build_id] = present
            time.sleep(1.0)
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    versions = {v for v, _ in seen}
    assert len(versions) >= 3 and len(seen) > 10
    assert all(found == has_it[v] for v, found in seen)  # every response matches the one build it names


# -- incremental builds --------------------------------------------------------------------------------
def test_incremental_build_reencodes_only_changes_and_drops_pruned_collections(tmp_path, embedder, embedding_cache_dir, milvus_settings):
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    library = tmp_path / "library"
    shutil.copytree(PATTERNS, library)
    index_dir = tmp_path / "index"
    first = build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
    again = build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
    assert again.up_to_date and again.build_id == first.build_id

    def names():
        m = SearchIndex.open(index_dir, milvus=milvus_settings).manifest.milvus
        return m.chunks, m.patterns

    first_names = names()
    path = library / "time-banking.md"
    path.write_text(path.read_text(encoding="utf-8").replace("## ", "## ", 1) + "\nQuokka ledgers settle every hour.\n", encoding="utf-8")
    second = build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
    assert (second.patterns_rechunked, second.up_to_date) == (1, False)
    assert 1 <= second.chunks_encoded <= 3 and second.chunks_reused == second.chunks - second.chunks_encoded
    retriever = Retriever(SearchIndex.open(index_dir, milvus=milvus_settings), embedder)
    assert retriever.search("quokka ledgers", 1).hits[0].slug == "time-banking"
    client = client_of(milvus_settings)
    assert all(client.has_collection(n, timeout=5) for n in first_names)  # the previous build stays for its readers
    path.write_text(path.read_text(encoding="utf-8") + "\nWombat audits too.\n", encoding="utf-8")
    build(library, index_dir, embedder, milvus_settings, embedding_cache_dir)
    assert not any(client.has_collection(n, timeout=5) for n in first_names)  # pruned with its local build


def test_a_failed_build_leaves_no_collections_behind(tmp_path, embedder, embedding_cache_dir, milvus_settings, monkeypatch):
    client = client_of(milvus_settings)
    before = set(client.list_collections(timeout=5))

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "index"))

    monkeypatch.setattr("rag.index.store._fsync_tree", broken)  # the local write fails after the collections were filled
    with pytest.raises(StorageError, match="no space left on the device"):
        build(PATTERNS, tmp_path / "index", embedder, milvus_settings, embedding_cache_dir)
    assert set(client.list_collections(timeout=5)) == before
    assert not (tmp_path / "index" / "current").exists()


# -- faults: 503 with Retry-After, /health, recovery ----------------------------------------------------------
def test_server_down_gives_503_with_retry_after_and_recovers(tmp_path, embedder, embedding_cache_dir):
    from fastapi.testclient import TestClient

    from rag.config import MilvusSettings, Settings
    from rag.serve.http import create_app
    from support.milvus_fixtures import LiteServer, free_port

    server = LiteServer(tmp_path / "own-milvus", free_port())  # a server this test owns, whatever RAG_MILVUS_URI says
    (tmp_path / "own-milvus").mkdir()
    server.start()
    try:
        settings = MilvusSettings(uri=server.uri, timeout_s=1, prefix="faults")
        build(PATTERNS, tmp_path / "index", embedder, settings, embedding_cache_dir)
        app_settings = Settings(index_dir=tmp_path / "index", milvus=settings)
        with TestClient(create_app(app_settings, embedder=embedder)) as client:
            assert client.post("/search", json={"query": SHELVES, "k": 3}).json()["hits"][0]["slug"] == "pull-based-replenishment"
            health = client.get("/health").json()
            assert {k: health[k] for k in ("status", "patterns", "engine", "reachable")} == {
                "status": "ok",
                "patterns": 25,
                "engine": "milvus",
                "reachable": True,
            }
            server.stop()
            down = client.post("/search", json={"query": SHELVES, "k": 3})
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            assert down.json()["field"] == "engine" and "Milvus engine" in down.json()["detail"] and "retry" in down.json()["detail"]
            health = client.get("/health")
            assert health.status_code == 503 and (health.json()["engine"], health.json()["reachable"], health.json()["status"]) == (
                "milvus",
                False,
                "degraded",
            )
            with TestClient(create_app(app_settings, embedder=embedder)) as cold:  # unreachable at start: serves 503, not a crash
                assert cold.post("/search", json={"query": SHELVES, "k": 3}).status_code == 503
            server.start()
            deadline = time.monotonic() + 30
            while (up := client.post("/search", json={"query": SHELVES, "k": 3})).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert up.status_code == 200 and up.json()["hits"][0]["slug"] == "pull-based-replenishment"
            assert client.get("/health").json()["reachable"] is True
    finally:
        server.stop()


# -- the CLI end to end: rag index --engine milvus, rag search, rag eval ---------------------------------------
def test_cli_index_search_and_eval_on_milvus(
    tmp_path, monkeypatch, embedder, embedding_cache_dir, milvus, milvus_prefix, patterns_index_dir
):
    from rag.cli import common as cli_common
    from rag.cli.app import app

    monkeypatch.setattr(cli_common, "encoder", lambda: embedder)
    monkeypatch.setattr(cli_common, "query_encoder", lambda: embedder)
    runner = CliRunner()
    env = {"RAG_MILVUS_PREFIX": f"{milvus_prefix}_cli", "COLUMNS": "160", **({"RAG_MILVUS_TOKEN": milvus.token} if milvus.token else {})}
    index_dir = tmp_path / "index"
    built = runner.invoke(
        app,
        [
            "index",
            str(PATTERNS),
            "--index-dir",
            str(index_dir),
            "--engine",
            "milvus",
            "--milvus-uri",
            milvus.uri,
            "--cache-dir",
            str(embedding_cache_dir),
            "--json",
        ],
        env=env,
    )
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["chunks_encoded"] == 0
    assert json.loads((index_dir / "current" / "manifest.json").read_text())["milvus"]["prefix"] == f"{milvus_prefix}_cli"
    found = runner.invoke(app, ["search", SHELVES, "-k", "3", "--json", "--index-dir", str(index_dir)], env=env)
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["hits"][0]["slug"] == "pull-based-replenishment"
    queries = PATTERNS.parent / "eval" / "dev" / "patterns.jsonl"
    ndcg = {}
    for name, directory in (("milvus", index_dir), ("embedded", patterns_index_dir)):
        report = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["eval", str(queries), "--index-dir", str(directory), "--report", str(report)], env=env)
        assert result.exit_code == 0, result.output
        ndcg[name] = json.loads(report.read_text())["means"]["hybrid"]["ndcg@10"]
    assert ndcg["milvus"] == pytest.approx(ndcg["embedded"], abs=0.02) and ndcg["milvus"] > 0.8
    bad = runner.invoke(app, ["index", str(PATTERNS), "--index-dir", str(tmp_path / "x"), "--engine", "elastic"], env=env)
    assert bad.exit_code == 2 and "--engine must be embedded or milvus" in bad.output
