"""Confidence on one 0-1 scale on the real commons-os library (older 0-1 fractions and newer 1-5 stars)."""

from __future__ import annotations

import pytest

from rag.load.library import load_library
from rag.records.filters import Filters
from rag.search.filters import FilterMasks
from support import CORPORA


@pytest.mark.corpora
@pytest.mark.skipif(not (CORPORA / "commons-os").is_dir(), reason="needs ../shared/corpora/commons-os")
def test_commons_os_keeps_its_older_patterns_at_a_low_minimum():
    patterns = load_library(CORPORA / "commons-os").patterns
    rated = [p for p in patterns if p.lifecycle.confidence is not None]
    assert rated and all(0.0 <= p.lifecycle.confidence <= 1.0 for p in rated)
    kept = FilterMasks(patterns).mask(Filters(min_confidence=0.2))
    assert int(kept.sum()) == len(rated)  # one star (0.2) and the older 0.7 fractions all pass 0.2
