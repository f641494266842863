"""lab/similar.py (issue 28's measurement of `similar` against the curated relationships) on patterns/ indexed with
the fake encoder: the count is each pattern's curated neighbours found in its top k, so with k covering the whole
library every resolved curated neighbour is found, and a smaller k finds at most as many."""

from __future__ import annotations

import json

from lab.similar import main, measure
from rag.search.graph import Graph


def test_every_curated_neighbour_is_found_when_k_covers_the_library(fake_index):
    graph = Graph(fake_index.patterns)
    curated = {p.slug: {r.slug for r in graph.related(p.slug)} - {p.slug} for p in fake_index.patterns}
    whole = measure(fake_index, len(fake_index.patterns))
    assert whole["with_curated"] == sum(1 for c in curated.values() if c)
    assert whole["curated_in_top_k"] == sum(len(c) for c in curated.values()) > 0
    assert whole["share_with_one"] == 1.0
    top5 = measure(fake_index, 5)
    assert 0 < top5["curated_in_top_k"] <= whole["curated_in_top_k"]
    assert top5["mean_per_pattern"] == round(top5["curated_in_top_k"] / top5["with_curated"], 4)


def test_the_report_names_its_command_and_holds_the_figures(fake_index_dir, tmp_path):
    report = tmp_path / "similar.md"
    main(["--index", f"fake:{fake_index_dir}", "--k", "3", "--report", str(report)])
    data = json.loads(report.with_suffix(".json").read_text())
    text = report.read_text()
    assert f"python -m lab.similar --index fake:{fake_index_dir} --k 3 --report {report}" in text
    assert f"| fake | {data['fake']['patterns']} | {data['fake']['with_curated']} | {data['fake']['curated_in_top_k']} |" in text
