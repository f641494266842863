"""The cross-validated adaptation measurement (bench.adaptation --split-all --cross-validate): the split holds
out a share of every pattern, the evaluated library holds only those, and only queries whose every relevant
pattern is held out are judged."""

from __future__ import annotations

import json
from pathlib import Path

from bench.adaptation import held_out_library, judged_in_library
from rag.adapt import pairs as mining
from rag.load.library import load_library

PATTERNS = Path(__file__).resolve().parents[2] / "patterns"


def test_split_all_holds_out_a_share_of_every_pattern():
    patterns = load_library(PATTERNS).patterns
    training, held = mining.split(patterns, seed=0, share=0.5, among_all=True)
    assert len(training) + len(held) == len(patterns)
    assert len(held) >= round(0.5 * len(patterns))  # the share, plus near-duplicates of the held-out ones
    assert not {p.slug for p in training} & {p.slug for p in held}
    for h in held:
        assert not any(mining.related(t, h) for t in training)


def test_the_held_out_library_and_the_judged_queries(tmp_path):
    patterns = load_library(PATTERNS).patterns
    held = [p.slug for p in patterns[:5]]
    library, files = held_out_library(PATTERNS, held, tmp_path / "lib")
    assert files == 5 and sorted(p.slug for p in load_library(library).patterns) == sorted(held)
    dev = tmp_path / "dev.jsonl"
    lines = [
        {"query": "a", "relevant": {held[0]: 2, held[1]: 1}},  # every relevant pattern held out: kept
        {"query": "b", "relevant": {held[0]: 2, patterns[7].slug: 1}},  # one relevant pattern trained on
        {"query": "c", "relevant": {held[2]: 0, patterns[8].slug: 1}},
    ]  # grade 0 does not count as relevant
    dev.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _, kept, total = judged_in_library(dev, set(held), tmp_path / "every.jsonl", every=True)
    assert (kept, total) == (1, 3) and json.loads((tmp_path / "every.jsonl").read_text())["query"] == "a"
    _, kept, _ = judged_in_library(dev, set(held), tmp_path / "any.jsonl")
    assert kept == 2
