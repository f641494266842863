"""Issue 29 in the product: the cache of query vectors gives identical hits, admission control refuses at once with
Retry-After past its bound and never otherwise, and memory-mapped vectors answer as FAISS does (fake encoder)."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest

from bench.loadgen import serve_in_thread
from rag.config import RetrieverSettings, Settings, VectorSettings
from rag.errors import IndexCorrupt, Overloaded
from rag.index.vectors import VectorIndex
from rag.records.request import SearchRequest
from rag.search.retriever import Retriever
from rag.serve.batching import Admission
from rag.serve.http import create_app
from rag.serve.state import State


def test_a_cached_query_vector_gives_identical_hits_and_is_not_encoded_again(fake_index, fake_encoder):
    retriever = Retriever(fake_index, fake_encoder)
    first = retriever.search("stock nobody ordered", k=10)
    calls = fake_encoder.calls
    again = retriever.search("stock nobody ordered", k=10)
    assert fake_encoder.calls == calls and retriever.cache.hits >= 1
    assert [(h.slug, h.score, h.relevance) for h in first.hits] == [(h.slug, h.score, h.relevance) for h in again.hits]
    batch = retriever.run_many(
        [retriever.prepare(SearchRequest("stock nobody ordered", 10)), retriever.prepare(SearchRequest("new words here"))]
    )
    assert [h.slug for h in batch[0].hits] == [h.slug for h in first.hits]
    off = Retriever(fake_index, fake_encoder, RetrieverSettings(query_cache=0))
    off.search("stock nobody ordered")
    before = fake_encoder.calls
    off.search("stock nobody ordered")
    assert fake_encoder.calls == before + 1 and off.cache.hits == 0


def test_admission_refuses_past_its_bound_and_frees_its_place():
    admission = Admission(2)
    with admission, admission:
        with pytest.raises(Overloaded, match="answering 2 searches already"):
            with admission:
                pass
        assert admission.held == 2 and admission.refused == 1
    assert admission.held == 0
    with admission:
        assert admission.held == 1


def test_past_the_admission_bound_the_server_answers_503_with_retry_after_at_once(fake_index_dir, fake_encoder, monkeypatch):
    state = State.load(fake_index_dir, fake_encoder)
    release = threading.Event()
    real = state.retriever.run

    def slow(query):  # every search holds its place until released
        release.wait(10)
        return real(query)

    monkeypatch.setattr(state.retriever, "run", slow)
    app = create_app(Settings(index_dir=fake_index_dir, batch_max=1, max_pending=3), state=state)
    with serve_in_thread(app) as url:
        codes: list[int] = []

        def search():
            codes.append(httpx.post(url + "/search", json={"query": "stock"}, timeout=30).status_code)

        held = [threading.Thread(target=search) for _ in range(3)]
        for t in held:
            t.start()
        deadline = time.monotonic() + 10
        while app.state.rag.admission.held < 3 and time.monotonic() < deadline:  # the three hold their places
            time.sleep(0.02)
        refused = httpx.post(url + "/search", json={"query": "stock"}, timeout=30)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1" and "searches already" in refused.json()["detail"]
        release.set()
        for t in held:
            t.join(30)
        assert codes == [200, 200, 200]  # below the bound: no error at all
        assert httpx.post(url + "/search", json={"query": "stock"}).status_code == 200


def test_memory_mapped_flat_vectors_answer_as_faiss_does(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    built = VectorIndex.build(vectors)
    built.save(tmp_path / "v.npy")
    mapped = VectorIndex.load(tmp_path / "v.npy", VectorSettings())
    assert mapped.index is None and isinstance(mapped.matrix(), np.memmap)
    assert mapped.matrix().flags.aligned  # numpy multiplies an unaligned float32 map without BLAS (100x slower)
    mask = np.zeros(500, dtype=bool)
    mask[::7] = True
    for q in vectors[:5]:
        for m in (None, mask):
            a, b = built.search(q, 20, m), mapped.search(q, 20, m)
            assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0], atol=1e-6)
    assert np.array_equal(mapped.reconstruct(np.array([3, 9])), vectors[[3, 9]])
    through_faiss = VectorIndex.load(tmp_path / "v.npy", VectorSettings(kernel="faiss"))
    assert through_faiss.index is not None and np.array_equal(
        through_faiss.search(vectors[0], 20, mask)[1], built.search(vectors[0], 20, mask)[1]
    )


def test_a_flat_index_in_faiss_format_still_opens(tmp_path):  # builds written before vectors.npy
    import faiss

    vectors = np.eye(8, dtype=np.float32)
    faiss.write_index(VectorIndex.build(vectors).index, str(tmp_path / "v.faiss"))
    reopened = VectorIndex.load(tmp_path / "v.faiss", VectorSettings())
    assert reopened.search(vectors[2], 1)[1].tolist() == [2] and reopened.matrix().flags.aligned


def test_a_corrupt_vectors_file_names_the_rebuild(tmp_path):
    (tmp_path / "v.npy").write_bytes(b"not numpy at all")
    with pytest.raises(IndexCorrupt, match="v.npy is not a numpy array file.*--rebuild"):
        VectorIndex.load(tmp_path / "v.npy", VectorSettings())
