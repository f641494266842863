"""`python -m bench.kernels`: the exact-search kernels side by side; writes `<out>/kernels.md` and `.json`.

Synthetic unit vectors (seeded) of the commons-os and bmn sizes, k=300 (the retriever's dense candidates),
one query and batches of 8 and 32, unfiltered and under random filters keeping a share of the rows. Kernels:
`faiss` (VectorIndex kernel="faiss": FAISS's IndexFlatIP, one query at a time, a bitmap selector under a
filter), `faiss-batch` (one IndexFlatIP.search over the whole batch, the same selector) and `blas` (the
project's one-sgemm kernel, forced for every share). Every kernel's top-k is checked against a brute-force
numpy oracle. Rounds interleave the kernels (timing.interleaved); figures are medians and per-round ratios,
so they hold on a machine shared with other work. Also: query encoding p50 against in-process hybrid search
p50 on a real index, interleaved query by query.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from bench.timing import cycled, dev_queries, in_worker_thread, interleaved, paired_ratio, percentiles, time_ms
from rag.config import VectorSettings
from rag.index import vectors as vectors_module
from rag.index.vectors import VectorIndex

log = logging.getLogger(__name__)

SIZES = {"commons-os": 83_379, "bmn": 988}
DIM = 384
K = 300
BATCHES = (1, 8, 32)
SHARES: tuple[float | None, ...] = (None, 0.02, 0.05, 0.10, 0.25, 0.35, 0.50, 0.90)  # None: no filter
KERNELS = ("faiss", "faiss-batch", "blas")


def unit_vectors(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def random_mask(n: int, share: float, seed: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=max(1, round(share * n)), replace=False)] = True
    return mask


# float32 kernels may order rows whose float64 scores differ by less than this differently at the k-th place
TIE = 1e-5


def recall(matrix: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None, found: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean share of the brute-force (float64, full sort) top-k that a kernel returned; a returned row whose exact
    score ties the k-th best within TIE counts as a right answer. A kernel returning too few rows loses the rest."""
    scores = queries.astype(np.float64) @ matrix.T.astype(np.float64)
    if mask is not None:
        scores[:, ~mask] = -np.inf
    k = min(k, len(matrix) if mask is None else int(mask.sum()))
    shares = []
    for row, (_, rows) in zip(scores, found):
        kth = np.sort(row)[::-1][k - 1]
        rows = np.unique(rows)
        shares.append(int(np.sum((row[rows] >= kth - TIE) & np.isfinite(row[rows]))) / k)
    return round(float(np.mean(shares)), 4)


def faiss_batch(index: VectorIndex, queries: np.ndarray, k: int, mask: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    import faiss

    params = faiss.SearchParameters()
    if mask is not None:
        bits = np.packbits(mask.astype(np.uint8), bitorder="little")
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
    k = min(k, index.size if mask is None else int(mask.sum()))
    scores, rows = index.index.search(queries, k, params=params)
    return [(s[r >= 0], r[r >= 0]) for s, r in zip(scores, rows)]


def cell(faiss_ix: VectorIndex, blas_ix: VectorIndex, queries: np.ndarray, mask: np.ndarray | None, reps: int) -> dict:
    k = min(K, faiss_ix.size if mask is None else int(mask.sum()))
    calls = {
        "faiss": lambda: faiss_ix.search_batch(queries, K, mask),
        "faiss-batch": lambda: faiss_batch(faiss_ix, queries, K, mask),
        "blas": lambda: blas_ix._blas(queries, k, mask),
    }
    recalls = {name: recall(blas_ix.matrix(), queries, K, mask, call()) for name, call in calls.items()}
    samples = interleaved(calls, reps)
    ms = {name: percentiles(values)["p50"] for name, values in samples.items()}
    return {
        "ms_p50": ms,
        "recall": recalls,
        "blas_over_faiss": paired_ratio(samples["blas"], samples["faiss"]),
        "blas_over_faiss_batch": paired_ratio(samples["blas"], samples["faiss-batch"]),
        "winner": min(ms, key=ms.get),
    }


def kernel_grid(reps: int, seed: int) -> dict:
    out: dict = {}
    for size_name, n in SIZES.items():
        matrix = unit_vectors(n, seed)
        faiss_ix = VectorIndex.build(matrix, VectorSettings(kernel="faiss"))
        blas_ix = VectorIndex(faiss_ix.index, VectorSettings(kernel="blas"))  # the same stored vectors
        rows: list[dict] = []
        for batch in BATCHES:
            # queries near stored rows, as real queries sit near their passages
            queries = matrix[np.random.default_rng(seed + batch).choice(n, batch)] + 0.5 * unit_vectors(batch, seed + 100 + batch)
            queries = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)
            for share in SHARES:
                mask = None if share is None else random_mask(n, share, seed + int(share * 1000))
                log.info("%s batch %d share %s", size_name, batch, share)
                rows.append({"batch": batch, "share": share, **cell(faiss_ix, blas_ix, queries, mask, reps)})
        out[size_name] = {"rows": n, "dim": DIM, "k": K, "cells": rows}
    return out


def crossover(cells: list[dict], batch: int) -> float | None:
    """The smallest tested share from which BLAS beats the per-query FAISS kernel at every larger share."""
    shares = sorted((c for c in cells if c["batch"] == batch and c["share"] is not None), key=lambda c: c["share"])
    best = None
    for c in reversed(shares):
        if c["blas_over_faiss"] is None or c["blas_over_faiss"] >= 1:
            break
        best = c["share"]
    return best


def encode_vs_search(index_dir: Path, queries: list[str], n: int) -> dict:
    from rag.embedding.minilm import MiniLMEncoder
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    encoder = MiniLMEncoder()
    retriever = Retriever(SearchIndex.open(index_dir), encoder)
    texts = cycled(queries, n)

    def run() -> tuple[list[float], list[float]]:
        for text in texts[:10]:
            encoder.encode_query(text)
            retriever.search(text, 10)
        encode, search = [], []
        for i, text in enumerate(texts):  # alternate which goes first
            pair = [(encode, lambda: encoder.encode_query(text)), (search, lambda: retriever.search(text, 10))]
            for samples, call in pair if i % 2 == 0 else pair[::-1]:
                samples.append(time_ms(call))
        return encode, search

    encode, search = in_worker_thread(run)
    return {
        "index": str(index_dir),
        "queries": n,
        "k": 10,
        "encode_ms": percentiles(encode),
        "hybrid_search_ms": percentiles(search),
        "search_over_encode_p50": round(percentiles(search)["p50"] / percentiles(encode)["p50"], 3),
        "search_over_encode_paired": paired_ratio(search, encode),
    }


def machine() -> dict:
    import faiss

    try:
        import faiss.swigfaiss_avx2  # noqa: F401

        avx2_module = True
    except ImportError:
        avx2_module = False
    return {
        "faiss": faiss.__version__,
        "faiss_compile_options": faiss.get_compile_options(),
        "faiss_avx2_module": avx2_module,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "numpy": np.__version__,
        "blas_min_share": vectors_module.BLAS_MIN_SHARE,
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Exact-search kernels",
        "",
        f"Machine shared with other developers (2 cores): read the ratios (kernels interleaved, {result['reps']} rounds, medians), not "
        f"the milliseconds.",
        f"FAISS {m['faiss']} (compile options `{m['faiss_compile_options'].strip()}`; `faiss.swigfaiss_avx2` importable: "
        f"{m['faiss_avx2_module']}), "
        f"{m['faiss_omp_threads']} OpenMP threads, numpy {m['numpy']}. k={K}, {DIM} dims, seeded synthetic unit vectors; filters keep "
        f"random rows.",
        "",
    ]
    for size_name, grid in result["grid"].items():
        lines += [
            f"## {size_name} size: {grid['rows']:,} x {grid['dim']}",
            "",
            "| batch | rows kept | faiss ms | faiss-batch ms | blas ms | blas / faiss | blas / faiss-batch | winner | recall (faiss, "
            "batch, blas) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in grid["cells"]:
            share = "all" if c["share"] is None else f"{c['share']:.0%}"
            ms, r = c["ms_p50"], c["recall"]
            lines.append(
                f"| {c['batch']} | {share} | {ms['faiss']} | {ms['faiss-batch']} | {ms['blas']} | {c['blas_over_faiss']} | "
                f"{c['blas_over_faiss_batch']} | {c['winner']} | {r['faiss']}, {r['faiss-batch']}, {r['blas']} |"
            )
        if grid["rows"] < 10_000:
            lines += [
                "",
                "At this size a call takes well under a millisecond, so preemption by other work on the shared cores dominates the "
                "multi-threaded kernels (blas, faiss-batch) in batches: read the larger size's rows for the choice of kernel.",
            ]
        lines += [
            "",
            "BLAS beats the per-query FAISS kernel from these shares of rows kept on (every larger share too): "
            + ", ".join(f"batch {b}: {grid['crossover'][str(b)]}" for b in BATCHES),
            "",
        ]
    lines += ["## BLAS_MIN_SHARE", "", result["verdict"], ""]
    e = result["encode_vs_search"]
    lines += [
        "## Query encoding against hybrid search",
        "",
        f"{e['queries']} dev queries on {e['index']} (k=10, in a worker thread, encode and search alternating query by query): "
        f"encode_query p50 {e['encode_ms']['p50']} ms, hybrid search p50 {e['hybrid_search_ms']['p50']} ms (it encodes the query itself). "
        f"search / encode: {e['search_over_encode_p50']} (p50s), {e['search_over_encode_paired']} (median of per-query ratios).",
        "",
    ]
    return "\n".join(lines)


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder for kernels.md and kernels.json.")] = Path("eval/bench"),
    index_dir: Annotated[Path, typer.Option("--index-dir", help="Index of the encode-against-search figure.")] = Path("index-bmn"),
    dev: Annotated[Path, typer.Option("--dev", help="Folder of dev query sets (*.jsonl).")] = Path("eval/dev"),
    reps: Annotated[int, typer.Option("--reps", min=3, help="Interleaved rounds per cell.")] = 9,
    queries: Annotated[int, typer.Option("--queries", min=10, help="Queries of the encode-against-search figure.")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Time the kernels, check them against brute force, compare encoding with search."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: dict = {"reps": reps, "seed": seed, "machine": machine(), "grid": kernel_grid(reps, seed)}
    for grid in result["grid"].values():
        grid["crossover"] = {str(b): crossover(grid["cells"], b) for b in BATCHES}
    big = result["grid"]["commons-os"]["crossover"]
    current = vectors_module.BLAS_MIN_SHARE
    one = big["1"]
    result["verdict"] = f"At the commons-os size, one query: BLAS wins from {one} of rows kept on; current BLAS_MIN_SHARE {current}. " + (
        "It matches the data."
        if one == current
        else f"The data say about {one}."
        if one is not None
        else "BLAS never wins at every larger share."
    )
    result["encode_vs_search"] = encode_vs_search(index_dir, dev_queries(sorted(dev.glob("*.jsonl"))), queries)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernels.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "kernels.md").write_text(markdown(result))
    typer.echo(f"wrote {out / 'kernels.md'} and {out / 'kernels.json'}")
    typer.echo(result["verdict"])


if __name__ == "__main__":
    app()
