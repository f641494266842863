"""bench.merge: sections of a second benchmark invocation replace the full run's, and the report says so."""

from __future__ import annotations

import pytest

from bench import report
from bench.merge import merge


def test_merge_replaces_the_sections_recomputes_goals_and_says_so():
    memory = {
        "index": "lib",
        "rss_idle": 2**30,
        "rss_peak": 2**30,
        "index_bytes": 2**29,
        "model_bytes": 2**29,
        "ratio": 1.2,
        "model_only_rss": 2**29,
    }
    base = {"date": "2026-12-02", "memory": {"error": "failed"}, "other": {"kept": 1}}
    rerun = {"date": "2026-12-02", "memory": memory, "other": {"kept": 2}}
    out = merge(base, rerun, ["memory"], "the memory section failed", "python -m bench --skip cold")
    assert out["memory"] == memory and out["other"] == {"kept": 1}
    met = {g["figure"]: g["met"] for g in out["goals"]}
    assert met["serving RSS / (index bytes + model bytes)"] is True
    md = report.markdown(out)
    assert "Sections memory come from a second invocation" in md and "the memory section failed" in md
    with pytest.raises(ValueError, match="no section http"):
        merge(base, rerun, ["http"], "x", "y")
