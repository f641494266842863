"""Micro-batching (issue 14): concurrent searches share one encoder pass and one vector search per filter,
and each gets exactly the answer it would get alone."""

from __future__ import annotations

import threading

import pytest

from rag.errors import QueryError, UnknownFilterValue
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.serve import service
from rag.serve.batching import MicroBatcher
from rag.serve.state import State

QUERIES = ["stock nobody ordered", "how do members decide", "paying suppliers late", "sharing the accounts openly", "member owned shop"]


def same(a, b) -> bool:
    return [(h.slug, h.rank, h.pinned) for h in a.hits] == [(h.slug, h.rank, h.pinned) for h in b.hits] and all(
        abs(x.score - y.score) < 1e-4 and abs(x.relevance - y.relevance) < 1e-4 for x, y in zip(a.hits, b.hits)
    )


def test_search_many_equals_one_at_a_time(fake_retriever, fake_index):
    domain = fake_index.patterns[0].domains[0].lower()
    requests = [SearchRequest(q, 5) for q in QUERIES] + [
        SearchRequest(QUERIES[0], 3, filters=Filters(domain=domain)),
        SearchRequest(QUERIES[1], 4, reader="activist"),
    ]
    batch = fake_retriever.run_many([fake_retriever.prepare(r) for r in requests])
    for request, got in zip(requests, batch):
        alone = fake_retriever.search(request)
        assert same(got, alone), request
        assert got.timings_ms["batch"] == len(requests)


def test_one_bad_request_fails_alone(fake_index_dir, fake_encoder):
    """Bad input is refused at `prepare` (before the batcher), so concurrent good searches are never held by it."""
    state = State.load(fake_index_dir, fake_encoder).with_batching(window_ms=20, max_batch=8)
    out: dict[int, object] = {}

    def one(i, request):
        try:
            out[i] = service.search(state, request)
        except Exception as exc:  # noqa: BLE001 - the test looks at what each call raised
            out[i] = exc

    requests = [SearchRequest("stock"), SearchRequest("   "), SearchRequest("stock", filters=Filters(domain="astrology"))]
    threads = [threading.Thread(target=one, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out[0].hits and isinstance(out[1], QueryError) and isinstance(out[2], UnknownFilterValue)


def test_concurrent_service_searches_are_batched_and_identical(fake_index_dir, fake_encoder):
    state = State.load(fake_index_dir, fake_encoder).with_batching(window_ms=50, max_batch=32)
    alone = {q: service.search(State.load(fake_index_dir, fake_encoder), SearchRequest(q, 5)) for q in QUERIES}
    calls_before = fake_encoder.calls
    results: dict[str, object] = {}
    start = threading.Barrier(len(QUERIES))

    def one(q):
        start.wait()
        results[q] = service.search(state, SearchRequest(q, 5))

    threads = [threading.Thread(target=one, args=(q,)) for q in QUERIES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(same(results[q], alone[q]) for q in QUERIES)
    assert state.batcher.requests == len(QUERIES) and state.batcher.batches < len(QUERIES)
    assert fake_encoder.calls - calls_before == state.batcher.batches  # one encoder pass per batch


def test_the_batcher_propagates_errors_and_idles_without_a_thread():
    workers: list[int] = []

    def run(items):
        workers.append(threading.get_ident())
        if "boom" in items:
            raise RuntimeError("boom")
        return [item.upper() for item in items]

    batcher = MicroBatcher(run, window_s=0.001, max_batch=4, idle_exit_s=0.5)
    assert batcher.submit("a") == "A"
    with pytest.raises(RuntimeError):
        batcher.submit("boom")
    assert batcher.submit("b") == "B"
    assert len(set(workers)) == 1  # one worker thread serves consecutive batches (torch keeps its thread team)
    for _ in range(100):
        if not batcher._working:
            break
        threading.Event().wait(0.01)
    assert not batcher._working
    with pytest.raises(ValueError):
        MicroBatcher(run, window_s=0.001, max_batch=0)


def test_a_replaced_state_answers_from_its_own_index_through_a_shared_batcher(fake_index_dir, fake_encoder):
    import dataclasses

    from rag.search.retriever import Retriever

    state = State.load(fake_index_dir, fake_encoder).with_batching(window_ms=1, max_batch=8)
    assert state.with_batching(1, 8) is state
    index = dataclasses.replace(state.index, manifest=state.index.manifest.with_(build_id="v2-test"))
    newer = dataclasses.replace(state, index=index, retriever=Retriever(index, fake_encoder))
    assert newer.batcher is state.batcher
    assert service.search(newer, SearchRequest("stock", 1)).index_version == "v2-test"
    assert service.search(state, SearchRequest("stock", 1)).index_version == state.version
