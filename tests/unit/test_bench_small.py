"""The small benchmarks' pure parts: the kernels agree with brute force on an awkward size, batching's
summary and choice of window follow their rules, the adaptation bench's settings and dev filter."""

import json
from pathlib import Path

import numpy as np

from bench.adaptation import AdaptBenchSettings, judged_in_library
from bench.batching import pick, summarize
from bench.kernels import faiss_batch, random_mask, recall, unit_vectors
from bench.timing import interleaved, paired_ratio
from rag.config import VectorSettings
from rag.index.vectors import VectorIndex


def test_kernels_return_the_brute_force_top_k_with_and_without_filters():
    matrix = unit_vectors(1037, seed=3)
    faiss_ix = VectorIndex.build(matrix, VectorSettings(kernel="faiss"))
    blas_ix = VectorIndex(faiss_ix.index, VectorSettings(kernel="blas"))
    queries = unit_vectors(5, seed=4)
    for mask in (None, random_mask(1037, 0.02, 5), random_mask(1037, 0.6, 6)):
        k = min(300, 1037 if mask is None else int(mask.sum()))
        for found in (
            faiss_ix.search_batch(queries, 300, mask),
            faiss_batch(faiss_ix, queries, 300, mask),
            blas_ix._blas(queries, k, mask),
        ):
            assert [len(rows) for _, rows in found] == [k] * 5
            assert recall(matrix, queries, 300, mask, found) == 1.0
            if mask is not None:
                assert all(mask[rows].all() for _, rows in found)


def test_recall_counts_a_missing_row_against_the_kernel():
    matrix = unit_vectors(50, seed=1)
    queries = unit_vectors(1, seed=2)
    best = np.argsort(-(queries @ matrix.T)[0])[:10]
    assert recall(matrix, queries, 10, None, [(None, best[:9])]) == 0.9


def test_interleaved_rotates_the_order_and_paired_ratio_takes_the_median():
    calls: list[str] = []
    samples = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=2, warmup=0)
    assert calls == ["a", "b", "b", "a"] and [len(v) for v in samples.values()] == [2, 2]
    assert paired_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 1.0]) == 3.0


def _run(p50, p99, rps, errors=0):
    return {"p50": p50, "p99": p99, "rps": rps, "errors": errors, "error_samples": [], "mean_batch": None}


def test_batching_summary_ratios_and_the_chosen_window():
    runs = {
        "off": {1: [_run(10, 12, 100)], 32: [_run(300, 400, 110)]},
        "1 ms": {1: [_run(11, 13, 95)], 32: [_run(50, 60, 600, errors=1)]},  # more throughput, but an error
        "5 ms": {1: [_run(15, 17, 70)], 32: [_run(45, 60, 500)]},
    }
    results = summarize(runs)
    assert results["off"]["goals"] == {"p99_32_over_p50_1": 40.0, "rps_32_over_rps_1": 1.1, "met": False}
    assert results["1 ms"]["goals"]["met"] and results["1 ms"]["levels"]["32"]["errors"] == 1
    assert results["5 ms"]["goals"] == {"p99_32_over_p50_1": 4.0, "rps_32_over_rps_1": 7.14, "met": True}
    assert pick(results) == "5 ms"


def test_adaptation_quick_settings_and_the_command_that_reproduces_them():
    full = AdaptBenchSettings()
    assert (full.epochs, full.max_pairs, full.seed, full.name) == (1, 200, 0, "adaptation")  # the README's example
    quick = full.quick_version()
    assert (quick.subset, quick.max_pairs, quick.batch_size, quick.force, quick.name) == (10, 8, 4, True, "adaptation-quick")
    assert quick.quick_version() == quick  # so the command written in a quick report reproduces it
    assert quick.command() == (
        "python -m bench.adaptation --library ../shared/corpora/bmn --dev eval/dev/bmn.jsonl --out eval/bench "
        "--epochs 1 --max-pairs 8 --seed 0 --batch-size 4 --subset 10 --force --quick"
    )
    assert "--no-dev" in AdaptBenchSettings(dev=None).command() and "--subset" not in full.command()


def test_adaptation_dev_keeps_the_queries_judged_in_the_library(tmp_path):
    lines = [
        {"qid": "a", "query": "x", "relevant": {"in": 1, "out": 2}},
        {"qid": "b", "query": "y", "relevant": {"out": 2}},
        {"qid": "c", "query": "z", "relevant": {"in": 0}},
        {"qid": "d", "query": "w"},
    ]
    dev = tmp_path / "dev.jsonl"
    dev.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n\n")
    path, kept, total = judged_in_library(dev, {"in"}, tmp_path / "kept.jsonl")
    assert (kept, total) == (1, 5)
    assert [json.loads(line)["qid"] for line in Path(path).read_text().splitlines()] == ["a"]
