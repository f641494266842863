"""Fusion is pure: expected values are written as arithmetic (as ranx does)."""

from __future__ import annotations

import pytest

from rag.search.fusion import convex_combination, min_max, ranked, reciprocal_rank_fusion


def test_rrf_sums_reciprocal_ranks_with_rank_base_one():
    fused = reciprocal_rank_fusion({"a": ["x", "y", "z"], "b": ["z", "x"]}, k=60)
    assert fused["x"] == pytest.approx(1 / (60 + 1) + 1 / (60 + 2))
    assert fused["y"] == pytest.approx(1 / (60 + 2))
    assert fused["z"] == pytest.approx(1 / (60 + 3) + 1 / (60 + 1))


def test_rrf_weights_and_k_change_the_ranking():
    lists = {"dense": ["d1", "shared"], "lexical": ["l1", "l2", "shared"]}
    plain = reciprocal_rank_fusion(lists, k=60)
    assert plain["shared"] == pytest.approx(1 / 62 + 1 / 63) and plain["d1"] == pytest.approx(1 / 61)
    assert ranked(plain)[0][0] == "shared"
    small_k = reciprocal_rank_fusion(lists, k=1)
    assert small_k["shared"] == pytest.approx(1 / 3 + 1 / 4) and small_k["d1"] == pytest.approx(1 / 2)
    assert ranked(small_k)[0][0] == "shared"
    weighted = reciprocal_rank_fusion(lists, k=1, weights={"dense": 3.0, "lexical": 1.0})
    assert weighted["d1"] == pytest.approx(3 / 2) and weighted["shared"] == pytest.approx(3 / 3 + 1 / 4)
    assert ranked(weighted)[0][0] == "d1"


def test_rrf_zero_weight_drops_a_list_and_rank_base_zero():
    assert reciprocal_rank_fusion({"a": ["x"], "b": ["y"]}, weights={"a": 1.0, "b": 0.0}) == {"x": pytest.approx(1 / 61)}
    assert reciprocal_rank_fusion({"a": ["x"]}, k=60, rank_base=0) == {"x": pytest.approx(1 / 60)}


def test_min_max_and_convex_combination():
    assert min_max({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert min_max({"a": 7.0}) == {"a": 1.0}
    assert min_max({}) == {}
    fused = convex_combination({"dense": {"a": 0.9, "b": 0.5, "c": 0.7}, "bm25": {"b": 12.0, "c": 4.0}}, {"dense": 1.0, "bm25": 0.5})
    assert fused["a"] == pytest.approx(1.0 * 1.0)
    assert fused["b"] == pytest.approx(1.0 * 0.0 + 0.5 * 1.0)
    assert fused["c"] == pytest.approx(1.0 * (0.7 - 0.5) / (0.9 - 0.5) + 0.5 * 0.0)
    heavier_bm25 = convex_combination({"dense": {"a": 0.9, "b": 0.5}, "bm25": {"b": 12.0}}, {"dense": 1.0, "bm25": 2.0})
    assert [d for d, _ in ranked(heavier_bm25)] == ["b", "a"]


def test_ranked_breaks_ties_by_id():
    assert ranked({"b": 1.0, "a": 1.0, "c": 2.0}) == [("c", 2.0), ("a", 1.0), ("b", 1.0)]
