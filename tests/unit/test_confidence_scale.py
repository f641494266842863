"""One confidence scale for both schema generations: 0-1, five stars = 1.0 (issue 12 item 7)."""

from __future__ import annotations

import pytest

from rag.errors import UnknownFilterValue
from rag.load.library import load_library
from rag.records.filters import Filters
from rag.search.filters import Facets, FilterMasks, normalize
from support import front_matter, write_pattern


def library(tmp_path):
    write_pattern(tmp_path, "one-star", front_matter("one-star", lifecycle={"confidence": 1}))
    write_pattern(tmp_path, "five-stars", front_matter("five-stars", lifecycle={"confidence": 5}))
    old = "slug: older\ntitle: Older\nclassification:\n  domain: testing\nconfidence_score: 0.7\n"
    write_pattern(tmp_path, "older", old, "## Problem\n\nText.\n")
    return {p.slug: p for p in load_library(tmp_path).patterns}


def test_stars_and_fractions_map_onto_one_scale(tmp_path):
    patterns = library(tmp_path)
    assert patterns["one-star"].lifecycle.confidence == pytest.approx(0.2) and patterns["one-star"].lifecycle.confidence_stars == 1
    assert patterns["five-stars"].lifecycle.confidence == pytest.approx(1.0)
    assert patterns["older"].lifecycle.confidence == pytest.approx(0.7) and patterns["older"].lifecycle.confidence_stars is None


def test_min_confidence_compares_both_generations_on_that_scale(tmp_path):
    patterns = list(library(tmp_path).values())
    masks, facets = FilterMasks(patterns), Facets.of(patterns)
    keep = masks.mask(normalize(Filters(min_confidence=0.5), facets))
    assert {p.slug for p, k in zip(patterns, keep) if k} == {"five-stars", "older"}
    assert dict(facets.confidences) == {"0.20": 1, "1.00": 1, "0.70": 1}
    with pytest.raises(UnknownFilterValue, match="five stars = 1.0"):
        normalize(Filters(min_confidence=4), facets)
