"""The bench's `adapt` section (bench.adaptation) in its quick form on the seven-pattern adapt library (marked
`model`: three fresh processes load the real model and one trains on 4 pairs; about a minute on 2 loaded cores):
every figure of the report is a real number, and the main report carries the section's goals and points at it."""

from __future__ import annotations

import json
import math

import pytest

from bench import adaptation, report
from support.adapt_library import adapt_library

pytestmark = pytest.mark.model

DEV = (
    ("q1", "my sourdough loaves come out flat and sour", {"bread": 2, "bread-baking": 1}),
    ("q2", "the bees swarm out of the hive every spring", {"bees": 2, "hive-keeping": 1}),
    ("q3", "fixing bicycles together with the neighbours", {"repair-cafe": 2, "bike-repair-cafes": 2}),
    ("q4", "kitchen scraps pile up and smell", {"compost": 2}),
    ("q5", "a pattern nobody wrote", {"not-in-the-library": 2}),  # left out: no relevant pattern in the library
)


def _real(value, low: float = 0.0, high: float = math.inf) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high


@pytest.fixture(scope="module")
def quick(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("bench-adapt")
    dev = root / "dev.jsonl"
    dev.write_text("".join(json.dumps({"qid": q, "query": text, "relevant": rel}) + "\n" for q, text, rel in DEV), encoding="utf-8")
    settings = adaptation.AdaptBenchSettings(
        library=adapt_library(root / "library"), dev=dev, out=root / "out", max_pairs=4
    ).quick_version()
    return adaptation.run(settings, root / "work", embedder), root / "out"


def test_the_quick_section_measures_every_figure(quick):
    result, out = quick
    assert sorted(p.name for p in out.iterdir()) == ["adaptation-quick.json", "adaptation-quick.md"]  # never the real report's name
    assert json.loads((out / "adaptation-quick.json").read_text())["builds"]["ratio"] == result["builds"]["ratio"]
    a, rep = result["adapt"], result["adapt"]["report"]
    assert rep["written"] and sum(rep["pairs"].values()) == 4 and rep["held_out"]
    assert _real(a["process_seconds"], 1) and a["process_seconds"] >= a["call_seconds"] > 0 and _real(a["cpu_seconds"], 1)
    assert 200 * 2**20 < a["peak_rss"] < 16 * 2**30 and _real(a["other_cores"])
    for side in ("base", "adapted"):
        assert all(_real(rep[side]["held_out"][m], 0, 1) for m in ("ndcg@10", "mrr@10"))
    b = result["builds"]
    base, adapted = b["base"]["build"], b["adapted"]["build"]
    assert base["chunks"] == adapted["chunks"] == base["chunks_encoded"] == adapted["chunks_encoded"] > 0  # cold, the same chunks
    assert b["base"]["model"] == "sentence-transformers/all-MiniLM-L6-v2" and "+adapted@" in b["adapted"]["model"]
    assert all(
        _real(step["peak_rss"], 100 * 2**20) and _real(step["build"]["seconds"]["total"], 1e-3) for step in (b["base"], b["adapted"])
    )
    assert b["ratio"] == round(adapted["seconds"]["total"] / base["seconds"]["total"], 3) and _real(b["ratio_cpu"], 1e-3)
    d = result["dev"]
    assert (d["lines"], d["queries"], d["left_out"]) == (5, 4, 1)
    for name, row in d["variants"].items():
        for metric in adaptation.METRICS:
            assert _real(row[metric]["base"], 0, 1) and _real(row[metric]["adapted"], 0, 1), (name, metric)
    assert all(d["variants"]["lexical"][m]["diff"] == 0 for m in adaptation.METRICS)  # no vectors: a control
    assert result["machine"]["cpus"] >= 1 and "--quick" in result["command"]


def test_the_reports_say_what_was_measured(quick):
    result, out = quick
    text = (out / "adaptation-quick.md").read_text()
    assert f"Reproduce: `{result['command']}`" in text and "python -m bench.adaptation --library" in text
    assert "not cross-validated" in text and "commons-os" in text and "Cost ratio, re-encoding / base build: **" in text
    assert "n/a" not in text and "None" not in text
    main = {"date": "2000-01-02", "machine": {"cpus": 2}, "seconds": 1.0, "adapt": result}
    goals = [g for g in report.goals(main) if g.item == "adapt"]
    assert len(goals) == 3 and all("n/a" not in g.value and g.met is not None for g in goals)
    assert f"{result['builds']['ratio']:.3f}" in [g.value for g in goals]
    main["goals"] = [g.to_dict() for g in report.goals(main)]
    assert "## 8. Library adaptation (`rag adapt`)" in report.markdown(
        main
    ) and "[adaptation-quick.md](adaptation-quick.md)" in report.markdown(main)
