"""The index: build, reload, incremental refresh, corruption and crash safety, FAISS and BM25 oracles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import BuildSettings
from rag.errors import IndexCorrupt, IndexIncompatible, IndexNotFound
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.index.store import current_build, read_manifest
from rag.records.manifest import ModelRecord
from support import front_matter, small_library, topic_body, write_pattern

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def library(tmp_path) -> Path:
    return small_library(tmp_path / "lib")


def build(library: Path, index_dir: Path, embedder, cache: Path, **kw):
    return build_index(BuildSettings(library, index_dir, cache_dir=cache, **kw), embedder)


def test_build_then_load_gives_the_same_results(library, tmp_path, embedder, embedding_cache_dir):
    from rag.search.retriever import Retriever

    summary = build(library, tmp_path / "ix", embedder, embedding_cache_dir)
    assert (summary.patterns, summary.chunks, summary.errors) == (3, 27, 0)
    first = Retriever(SearchIndex.open(tmp_path / "ix"), embedder).search("honey and hives", k=3)
    again = Retriever(SearchIndex.open(tmp_path / "ix"), embedder).search("honey and hives", k=3)
    assert first.slugs[0] == "bees"
    assert [(h.slug, h.score) for h in first.hits] == [(h.slug, h.score) for h in again.hits]
    manifest = read_manifest(current_build(tmp_path / "ix"))
    assert manifest.model.to_dict() == {"name": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384, "max_seq_length": 256}
    assert manifest.counts.chunks == 27 and manifest.vectors.kind == "flat" and manifest.engine == "embedded"
    assert set(manifest.sources) == {"bees.md", "bikes.md", "bread.md"}
    assert {"vectors.npy", "chunks.jsonl", "patterns.jsonl", "bm25-keywords/params.index.json"} <= set(manifest.files)


def test_incremental_refresh_counts_are_exact(library, tmp_path, embedder):
    cache = tmp_path / "cache"
    first = build(library, tmp_path / "ix", embedder, cache)
    assert (first.chunks_encoded, first.chunks_reused, first.patterns_rechunked) == (27, 0, 3)

    unchanged = build(library, tmp_path / "ix", embedder, cache)
    assert unchanged.up_to_date and unchanged.build_id == first.build_id

    path = library / "bees.md"
    path.write_text(path.read_text().replace("Problem of keeping honey bees", "Problem of keeping honey bees alive through winter"))
    changed = build(library, tmp_path / "ix", embedder, cache)
    assert (changed.chunks, changed.chunks_encoded, changed.chunks_reused, changed.patterns_rechunked) == (27, 1, 26, 1)

    (library / "bikes.md").unlink()
    removed = build(library, tmp_path / "ix", embedder, cache)
    assert (removed.patterns, removed.chunks, removed.chunks_encoded) == (2, 18, 0)
    index = SearchIndex.open(tmp_path / "ix")
    assert {c.slug for c in index.chunks} == {"bees", "bread"}

    write_pattern(
        library, "boats", front_matter("boats", summary="A pattern about sailing small boats."), topic_body("sailing small boats")
    )
    added = build(library, tmp_path / "ix", embedder, cache)
    assert (added.patterns, added.chunks, added.chunks_encoded, added.patterns_rechunked) == (3, 27, 9, 1)
    assert SearchIndex.open(tmp_path / "ix").pattern("boats") is not None


def test_rebuild_flag_rechunks_but_reuses_cached_vectors(library, tmp_path, embedder):
    cache = tmp_path / "cache"
    build(library, tmp_path / "ix", embedder, cache)
    again = build(library, tmp_path / "ix", embedder, cache, rebuild=True)
    assert (again.up_to_date, again.patterns_rechunked, again.chunks_encoded, again.chunks_reused) == (False, 3, 0, 27)


def test_missing_index_is_reported_with_the_fix(tmp_path):
    with pytest.raises(IndexNotFound, match="rag index LIBRARY --index-dir"):
        SearchIndex.open(tmp_path / "nothing-here")


@pytest.fixture()
def built(library, tmp_path, embedder, embedding_cache_dir) -> Path:
    build(library, tmp_path / "ix", embedder, embedding_cache_dir)
    return tmp_path / "ix"


def test_truncated_file_is_refused(built):
    vectors = current_build(built) / "vectors.npy"
    with open(vectors, "r+b") as handle:
        handle.truncate(vectors.stat().st_size - 100)
    with pytest.raises(IndexCorrupt, match=r"vectors.npy has \d+ bytes.*truncated.*rag index LIBRARY --index-dir .* --rebuild"):
        SearchIndex.open(built)


def test_altered_file_of_same_size_is_refused(built):
    chunks = current_build(built) / "chunks.jsonl"
    data = bytearray(chunks.read_bytes())
    position = data.index(b"honey")
    data[position : position + 5] = b"HONEY"
    chunks.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="chunks.jsonl does not match its checksum"):
        SearchIndex.open(built)


def test_other_model_or_format_is_refused(built):
    build_dir = current_build(built)
    manifest_path = build_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    with pytest.raises(IndexIncompatible, match="dimension=384.*uses 768"):
        SearchIndex.open(built, expected_model=ModelRecord(**{**manifest["model"], "dimension": 768}))
    manifest["format_version"] = 99
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexIncompatible, match="index format 99"):
        SearchIndex.open(built)


def test_garbage_manifest_is_refused(built):
    (current_build(built) / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="manifest.json is not valid JSON"):
        SearchIndex.open(built)


def test_build_killed_mid_encoding_leaves_previous_index_loadable(built, tmp_path):
    """kill -9 while `rag index` encodes: `current` still points at the previous complete build."""
    before = SearchIndex.open(built).version
    big = tmp_path / "big"
    for i in range(60):  # fresh text, never cached: encoding takes several seconds
        topic = f"topic number {i} with words {' '.join(str(i * j) for j in range(40))}"
        write_pattern(big, f"p{i}", front_matter(f"p{i}", summary=f"Summary {i}."), topic_body(topic))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rag"),
            "index",
            str(big),
            "--index-dir",
            str(built),
            "--cache-dir",
            str(tmp_path / "fresh-cache"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    deadline = time.time() + 240
    seen = b""
    while time.time() < deadline and b"encode" not in seen:
        data = os.read(proc.stderr.fileno(), 4096)  # tqdm redraws with \r: read raw bytes, not lines
        if not data:
            break
        seen += data
    assert b"encode" in seen, seen[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = SearchIndex.open(built)
    assert after.version == before
    assert {p.slug for p in after.patterns} == {"bees", "bikes", "bread"}
    builds = [p.name for p in (built / "builds").iterdir()]
    assert len([b for b in builds if not b.startswith(".")]) == 1


@pytest.mark.parametrize("n, k", [(1, 1), (7, 3), (1000, 10), (1003, 64)])
def test_flat_faiss_search_equals_numpy_oracle(n, k):
    from rag.index.vectors import VectorIndex

    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[n // 2] + 0.1 * rng.normal(size=384).astype(np.float32)
    mask = rng.random(n) < 0.5
    mask[n // 2] = True
    index = VectorIndex.build(vectors)
    for m in (None, mask):
        scores, rows = index.search(query, k, m)
        allowed = np.arange(n) if m is None else np.flatnonzero(m)
        oracle_scores = vectors[allowed] @ query
        order = allowed[np.argsort(-oracle_scores, kind="stable")][: min(k, len(allowed))]
        assert list(rows) == list(order)
        np.testing.assert_allclose(scores, vectors[order] @ query, rtol=1e-5, atol=1e-5)
        if m is not None:
            assert all(m[r] for r in rows)


def test_approximate_indexes_find_the_exact_neighbours():
    from rag.config import VectorSettings
    from rag.index.vectors import VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = VectorIndex.build(vectors)
    for settings in (VectorSettings(kind="hnsw", ef_search=128), VectorSettings(kind="ivf", nprobe=64)):
        approx = VectorIndex.build(vectors, settings)
        recall = np.mean(
            [len(set(approx.search(vectors[i], 10)[1]) & set(exact.search(vectors[i], 10)[1])) / 10 for i in range(0, 2000, 50)]
        )
        assert recall >= 0.95, (settings.kind, recall)


def test_bm25s_ranking_matches_rank_bm25():
    """The served BM25 (bm25s, Lucene variant) ranks like the reference rank-bm25 (Okapi) on a small corpus."""
    from rank_bm25 import BM25Okapi

    from rag.index.lexical import LexicalIndex, analyze

    corpus = [
        "a cat sat on the mat",
        "dogs chase cats in the garden",
        "the bird sings in the tree every morning",
        "fish swim in the river and the sea",
        "a dog and a cat became friends",
        "gardens need water and sunlight",
    ]
    docs = [analyze(text) for text in corpus]
    ours = LexicalIndex.build(docs, k1=1.5, b=0.75)
    reference = BM25Okapi(docs, k1=1.5, b=0.75, epsilon=0.25)
    for query in ("cat", "dog garden", "river sea fish", "morning bird tree"):
        tokens = analyze(query)
        mine = ours.scores(tokens)
        theirs = reference.get_scores(tokens)
        matched = [i for i in range(len(corpus)) if mine[i] > 0]
        assert sorted(matched, key=lambda i: (-mine[i], i)) == sorted(matched, key=lambda i: (-theirs[i], i)), query
        assert {i for i in range(len(corpus)) if theirs[i] > 0} <= set(matched) | {i for i in range(len(corpus)) if theirs[i] <= 0}


def test_unknown_query_words_score_nothing():
    from rag.index.lexical import LexicalIndex, analyze

    index = LexicalIndex.build([analyze("honey bees"), analyze("bicycle repair")])
    assert list(index.scores(analyze("zzz qqq"))) == [0.0, 0.0]
    assert index.scores(analyze("bees"))[0] > 0
