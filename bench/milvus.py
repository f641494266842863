"""`python -m bench.milvus`: the embedded engine beside the Milvus engine on Milvus Lite 2.5.1; writes
`<out>/milvus.md` and `.json`.

Milvus Lite is started as tests/support/milvus_fixtures.py starts it (a TCP server on 127.0.0.1, readiness
polled with a real RPC) and stopped with SIGTERM. The library is built into fresh index folders with each
engine in turn (rounds alternate the engines; vectors come from the embedding cache, so nothing is
re-encoded), then the same dev queries are timed in process on both, alternating query by query: hybrid
search (encoding included) and the dense call alone (the query vector given). Milvus Lite: one process on
this machine, not a cluster's figures.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from bench.milvus_lite import LiteServer
from bench.timing import clocked, cycled, dev_queries, in_worker_thread, paired_ratio, percentiles, time_ms

log = logging.getLogger(__name__)

CAVEAT = "Milvus Lite: one process on this machine, not a cluster's figures."
ENGINES = ("embedded", "milvus")


def builds(library: Path, cache_dir: Path, work: Path, milvus, encoder, rounds: int) -> tuple[dict, dict[str, Path]]:
    """Seconds per build and engine (fresh folders, engines alternating) and the last folder of each."""
    from rag.config import BuildSettings
    from rag.index.build import build_index

    seconds: dict[str, list[dict]] = {e: [] for e in ENGINES}
    folders: dict[str, Path] = {}
    for rnd in range(rounds):
        for engine in ENGINES if rnd % 2 == 0 else ENGINES[::-1]:
            folder = work / f"{engine}-{rnd}"
            settings = BuildSettings(
                library=library, index_dir=folder, cache_dir=cache_dir, engine=engine, milvus=milvus if engine == "milvus" else None
            )
            summary, cost = clocked(lambda: build_index(settings, encoder))
            cost["encoded"], cost["stages"] = summary.chunks_encoded, summary.seconds
            seconds[engine].append(cost)
            folders[engine] = folder
            log.info("build %d %s: %.2f s (%d chunks encoded)", rnd + 1, engine, cost["seconds"], summary.chunks_encoded)
    out = {
        e: {
            "seconds_median": round(statistics.median(c["seconds"] for c in costs), 3),
            "cpu_seconds_median": round(statistics.median(c["cpu_seconds"] for c in costs), 3),
            "chunks_encoded": [c["encoded"] for c in costs],
            "runs": costs,
        }
        for e, costs in seconds.items()
    }
    out["milvus_over_embedded"] = round(out["milvus"]["seconds_median"] / out["embedded"]["seconds_median"], 3)
    return out, folders


def queries(folders: dict[str, Path], milvus, encoder, texts: list[str]) -> dict:
    from rag.index.search_index import SearchIndex
    from rag.search.filters import Filters
    from rag.search.retriever import Retriever

    retrievers = {e: Retriever(SearchIndex.open(folders[e], milvus=milvus if e == "milvus" else None), encoder) for e in ENGINES}
    vectors = encoder.encode(texts)

    def run() -> dict:
        search: dict[str, list[float]] = {e: [] for e in ENGINES}
        dense: dict[str, list[float]] = {e: [] for e in ENGINES}
        same_top10 = 0
        for text in texts[:10]:
            for r in retrievers.values():
                r.search(text, 10)
        for i, text in enumerate(texts):
            order = ENGINES if i % 2 == 0 else ENGINES[::-1]
            top = {}
            for e in order:
                r = retrievers[e]
                started = time.perf_counter()
                top[e] = [h.slug for h in r.search(text, 10).hits]
                search[e].append((time.perf_counter() - started) * 1000)
                selection = r.selection(Filters())
                dense[e].append(time_ms(lambda: r.index.engine.dense(vectors[i : i + 1], r.settings.dense_candidates, selection)))
            same_top10 += top["embedded"] == top["milvus"]
        return {
            "queries": len(texts),
            "hybrid_search_ms": {e: percentiles(v) for e, v in search.items()},
            "dense_call_ms": {e: percentiles(v) for e, v in dense.items()},
            "hybrid_milvus_over_embedded": paired_ratio(search["milvus"], search["embedded"]),
            "dense_milvus_over_embedded": paired_ratio(dense["milvus"], dense["embedded"]),
            "same_top10_share": round(same_top10 / len(texts), 3),
        }

    return in_worker_thread(run)


def markdown(report: dict) -> str:
    b, q = report["builds"], report["queries"]
    lines = [
        "# Embedded engine against Milvus Lite",
        "",
        f"**{CAVEAT}**",
        "",
        f"Library {report['library']} ({report['rounds']} builds per engine into fresh folders, engines alternating; vectors from the "
        f"cache "
        f"{report['cache_dir']}, chunks encoded per build: embedded {b['embedded']['chunks_encoded']}, milvus "
        f"{b['milvus']['chunks_encoded']}). "
        f"Milvus Lite {report['milvus_lite']} started in {report['milvus_start_seconds']} s. The machine (2 cores) was shared with other "
        f"developers: "
        "read the ratios (measured side by side), not the absolute figures.",
        "",
        "| engine | build s (median) | build CPU s | hybrid p50 ms | hybrid p99 ms | dense call p50 ms | dense call p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in ENGINES:
        h, d = q["hybrid_search_ms"][e], q["dense_call_ms"][e]
        lines.append(
            f"| {e} | {b[e]['seconds_median']} | {b[e]['cpu_seconds_median']} | {h['p50']} | {h['p99']} | {d['p50']} | {d['p99']} |"
        )
    lines += [
        "",
        f"Milvus / embedded: build x{b['milvus_over_embedded']}, hybrid search x{q['hybrid_milvus_over_embedded']} and dense call "
        f"x{q['dense_milvus_over_embedded']} (medians of per-query ratios over {q['queries']} dev queries, k=10, 300 dense candidates; "
        f"hybrid search includes encoding the query). Same top 10 on both engines: {q['same_top10_share']:.0%} of queries.",
        "",
    ]
    return "\n".join(lines)


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder for milvus.md and milvus.json.")] = Path("eval/bench"),
    library: Annotated[Path, typer.Option("--library", help="The library to build.")] = Path("../shared/corpora/bmn"),
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Embedding cache holding the library's vectors.")] = Path("index/cache"),
    queries_file: Annotated[Path, typer.Option("--queries", help="Dev queries (JSONL).")] = Path("eval/dev/bmn.jsonl"),
    n_queries: Annotated[int, typer.Option("--n-queries", min=10, help="Queries timed (cycled).")] = 200,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Builds per engine.")] = 3,
) -> None:
    """Build with both engines and time queries on both; Milvus Lite runs on this machine."""
    import importlib.metadata as md

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "faiss", "sentence_transformers", "bm25s", "pymilvus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from rag.config import MilvusSettings
    from rag.embedding.minilm import MiniLMEncoder

    encoder = MiniLMEncoder()
    texts = cycled(dev_queries([queries_file]), n_queries)
    with tempfile.TemporaryDirectory(prefix="rag-bench-milvus-") as tmp, LiteServer(Path(tmp)) as server:
        milvus = MilvusSettings(uri=server.uri, prefix=f"bench_{uuid.uuid4().hex[:8]}", timeout_s=30)
        built, folders = builds(library.resolve(), cache_dir.resolve(), Path(tmp), milvus, encoder, rounds)
        timed = queries(folders, milvus, encoder, texts)
        report = {
            "caveat": CAVEAT,
            "library": str(library),
            "cache_dir": str(cache_dir),
            "rounds": rounds,
            "milvus_lite": md.version("milvus-lite"),
            "milvus_start_seconds": server.start_seconds,
            "builds": built,
            "queries": timed,
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "milvus.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "milvus.md").write_text(markdown(report))
    typer.echo(f"wrote {out / 'milvus.md'} and {out / 'milvus.json'}")


if __name__ == "__main__":
    app()
