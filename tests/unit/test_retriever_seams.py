"""The retriever's seams on the fake encoder: signals registry, filters before the cut, pinning, the engine."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from rag.errors import QueryError, UnknownFilterValue
from rag.index.engine import Selection, top_k
from rag.records.filters import Filters
from rag.search import signals as signal_registry
from rag.search.query import PreparedQuery
from rag.search.retriever import Retriever
from rag.search.signals.base import SignalRun


def test_every_registered_signal_runs_and_explains_its_rank(fake_retriever):
    results = fake_retriever.search("pull based replenishment of stock", k=5)
    assert len(results.hits) == 5
    assert set(results.timings_ms) >= {"encode", *signal_registry.SIGNALS, "total"}
    top = results.hits[0]
    assert set(top.retrievers) <= set(signal_registry.SIGNALS) and top.retrievers
    assert all(score.rank >= 1 for score in top.retrievers.values())


def test_a_new_signal_is_one_class_and_one_registration(fake_index, fake_encoder, monkeypatch):
    """A signal that prefers the last pattern in the library: registering it changes the ranking."""

    class LastPattern:
        name: ClassVar[str] = "last"
        needs_vector: ClassVar[bool] = False

        def __init__(self, index, settings):
            self.row = len(index.patterns) - 1

        def rank(self, query: PreparedQuery) -> SignalRun:
            return SignalRun(np.array([self.row]), np.array([1.0], dtype=np.float32))

    monkeypatch.setitem(signal_registry.SIGNALS, "last", LastPattern)
    base = Retriever(fake_index, fake_encoder)
    with_last = Retriever(fake_index, fake_encoder, base.settings.with_(weights={**base.settings.weights, "last": 10.0}))
    query = "member owned cooperative governance"
    last_slug = fake_index.patterns[-1].slug
    assert with_last.search(query, k=1).hits[0].slug == last_slug
    assert "last" in with_last.search(query, k=1).hits[0].retrievers
    assert "last" not in base.signals


def test_filters_apply_before_each_cut(fake_retriever, fake_index):
    domain = fake_index.patterns[0].domains[0].lower()
    members = {p.slug for p in fake_index.patterns if domain in {d.lower() for d in p.domains}}
    results = fake_retriever.search("how do we decide together", k=len(members), filters=Filters(domain=domain))
    assert {h.slug for h in results.hits} == members  # k hits whenever k exist, all inside the filter


def test_bad_input_names_the_field(fake_retriever):
    with pytest.raises(QueryError) as empty:
        fake_retriever.search("   ")
    assert empty.value.field == "query"
    with pytest.raises(QueryError) as big_k:
        fake_retriever.search("stock", k=10_000)
    assert big_k.value.field == "k"
    with pytest.raises(UnknownFilterValue) as unknown:
        fake_retriever.search("stock", filters=Filters(domain="astrology"))
    assert unknown.value.field == "domain" and unknown.value.valid


def test_a_title_typed_as_the_query_is_pinned_first(fake_retriever, fake_index):
    for pattern in fake_index.patterns[:5]:
        hit = fake_retriever.search(pattern.title.lower(), k=3).hits[0]
        assert hit.slug == pattern.slug and hit.name_match == pattern.title


def test_top_k_respects_the_mask_and_breaks_ties_by_row():
    scores = np.array([0.5, 2.0, 2.0, 0.0, 1.0], dtype=np.float32)
    everything = top_k(scores, 10, None)
    assert everything.rows.tolist() == [1, 2, 4, 0]  # zero scores never count as matches
    masked = top_k(scores, 2, np.array([True, False, True, True, True]))
    assert masked.rows.tolist() == [2, 4]


def test_engine_dense_search_stays_inside_the_selection(fake_index, fake_encoder):
    vector = fake_encoder.encode_query("stock nobody ordered")
    keep = np.zeros(len(fake_index.patterns), dtype=bool)
    keep[:3] = True
    selection = Selection(Filters(), keep, keep[fake_index.chunk_pattern])
    found = fake_index.engine.dense(vector[None, :], 1000, selection)[0]
    assert len(found) == int(selection.chunks.sum())
    assert set(fake_index.chunk_pattern[found.rows].tolist()) <= {0, 1, 2}
    assert np.all(np.diff(found.scores) <= 1e-6)
