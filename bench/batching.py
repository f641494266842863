"""`python -m bench.batching`: HTTP micro-batching under load; writes `<out>/batching.md` and `.json`.

One process serves the index once per configuration (batching off, then a batch_max of 32 with windows of
1, 2 and 5 ms), each app under uvicorn in its own thread (loadgen.serve_in_thread), all sharing one
encoder. The closed-loop load generator (loadgen.run_load, in the same process) drives them at 1, 8, 32
and 64 clients with the dev queries cycled. Rounds interleave the configurations at every level, the order
rotating, so a machine shared with other work slows them alike; figures are medians over rounds. Goals
(issue 14): p99 at 32 clients within 6x the 1-client p50, throughput at 32 clients at least 4x 1 client's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer

from bench.loadgen import run_load, serve_in_thread
from bench.timing import dev_queries

log = logging.getLogger(__name__)

LEVELS = (1, 8, 32, 64)
CONFIGS: dict[str, tuple[int, float]] = {
    "off": (1, 0.0),
    "1 ms": (32, 1.0),
    "2 ms": (32, 2.0),
    "5 ms": (32, 5.0),
}  # name: (batch_max, batch_window_ms)
P99_GOAL, RPS_GOAL = 6.0, 4.0


def measure(index_dir: Path, queries: list[str], seconds: float, rounds: int, levels=LEVELS, configs=CONFIGS) -> dict:
    from rag.config import Settings
    from rag.embedding.minilm import MiniLMEncoder
    from rag.serve.http.app import create_app

    encoder = MiniLMEncoder()
    runs: dict[str, dict[int, list[dict]]] = {name: {level: [] for level in levels} for name in configs}
    with contextlib.ExitStack() as stack:
        apps, urls = {}, {}
        for name, (batch_max, window) in configs.items():
            apps[name] = create_app(Settings(index_dir=index_dir, batch_max=batch_max, batch_window_ms=window), embedder=encoder)
            urls[name] = stack.enter_context(serve_in_thread(apps[name]))
        names = list(configs)
        for name in names:  # warm every server's routes, model threads and caches
            run_load(urls[name], queries, clients=4, seconds=2)
        for rnd in range(rounds):
            for level in levels:
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                for name in order:
                    batcher = apps[name].state.rag.batcher
                    before = (batcher.batches, batcher.requests) if batcher else (0, 0)
                    result = run_load(urls[name], queries, clients=level, seconds=seconds)
                    if batcher:
                        batches = batcher.batches - before[0]
                        result["mean_batch"] = round((batcher.requests - before[1]) / batches, 2) if batches else None
                    runs[name][level].append(result)
                    log.info(
                        "round %d, %d clients, %s: p50 %.1f ms p99 %.1f ms %.1f rps, %d errors",
                        rnd + 1,
                        level,
                        name,
                        result["p50"],
                        result["p99"],
                        result["rps"],
                        result["errors"],
                    )
    return summarize(runs)


def summarize(runs: dict[str, dict[int, list[dict]]]) -> dict:
    """Medians over rounds per configuration and level, errors summed, and the goal ratios."""
    out: dict = {}
    for name, by_level in runs.items():
        table = {}
        for level, results in by_level.items():
            row = {key: round(statistics.median(r[key] for r in results), 2) for key in ("p50", "p99", "rps")}
            row["errors"] = sum(r["errors"] for r in results)
            row["error_samples"] = [s for r in results for s in r["error_samples"]][:3]
            batches = [r["mean_batch"] for r in results if r.get("mean_batch")]
            row["mean_batch"] = round(statistics.median(batches), 2) if batches else None
            row["rounds"] = len(results)
            table[str(level)] = row
        one, many = table.get("1"), table.get("32")
        goals = {}
        if one and many and one["p50"] and one["rps"]:
            goals = {"p99_32_over_p50_1": round(many["p99"] / one["p50"], 2), "rps_32_over_rps_1": round(many["rps"] / one["rps"], 2)}
            goals["met"] = goals["p99_32_over_p50_1"] <= P99_GOAL and goals["rps_32_over_rps_1"] >= RPS_GOAL
        out[name] = {"levels": table, "goals": goals}
    return out


def pick(results: dict) -> str:
    """The batching window to default to: no errors first, then goals met, then the most throughput at 32
    clients, then the lowest 1-client p50."""
    on = [name for name in results if name != "off" and results[name]["goals"]]

    def rank(name: str) -> tuple:
        levels = results[name]["levels"]
        return (not any(row["errors"] for row in levels.values()), results[name]["goals"]["met"], levels["32"]["rps"], -levels["1"]["p50"])

    return max(on, key=rank)


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        "# HTTP micro-batching",
        "",
        f"Index {s['index_dir']}, dev queries of {s['queries_file']} cycled, k=10, {s['seconds']} s per run, {s['rounds']} rounds with the "
        "configurations interleaved at every level; medians over rounds. The machine (2 cores) was shared with other developers, and the "
        "load generator runs in the server's process (uvicorn threads, one GIL), so read the ratios between configurations, not the "
        "milliseconds.",
        "",
        "| batching | clients | p50 ms | p99 ms | requests/s | mean batch | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        for level, row in r["levels"].items():
            lines.append(
                f"| {name} | {level} | {row['p50']} | {row['p99']} | {row['rps']} | {row['mean_batch'] or '-'} | {row['errors']} |"
            )
    lines += [
        "",
        f"| batching | p99 at 32 / p50 at 1 (goal <= {P99_GOAL:g}x) | throughput at 32 / at 1 (goal >= {RPS_GOAL:g}x) | both met |",
        "|---|---|---|---|",
    ]
    for name, r in report["results"].items():
        g = r["goals"]
        lines.append(f"| {name} | {g.get('p99_32_over_p50_1')} | {g.get('rps_32_over_rps_1')} | {g.get('met')} |")
    off, chosen = report["results"]["off"]["levels"], report["results"][report["chosen"]]["levels"]
    lines += [
        "",
        f"Chosen default: {report['chosen']} window, batch_max 32 (rag/config.py). Against batching off: throughput at 32 clients "
        f"x{round(chosen['32']['rps'] / off['32']['rps'], 2)}, p99 at 32 clients x{round(chosen['32']['p99'] / off['32']['p99'], 2)}, "
        f"1-client p50 x{round(chosen['1']['p50'] / off['1']['p50'], 2)}. Errors in all runs: {report['errors']}.",
        "",
    ]
    return "\n".join(lines)


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder for batching.md and batching.json.")] = Path("eval/bench"),
    index_dir: Annotated[Path, typer.Option("--index-dir", help="The index to serve (read only).")] = Path("index-bmn"),
    queries_file: Annotated[Path, typer.Option("--queries", help="Dev queries (JSONL), cycled.")] = Path("eval/dev/bmn.jsonl"),
    seconds: Annotated[float, typer.Option("--seconds", min=1.0, help="Seconds of load per configuration and level.")] = 10.0,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds.")] = 2,
) -> None:
    """Load the server with batching off and on; report latency, throughput, errors and the goal ratios."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "faiss", "sentence_transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results = measure(index_dir, dev_queries([queries_file]), seconds, rounds)
    report = {
        "settings": {
            "index_dir": str(index_dir),
            "queries_file": str(queries_file),
            "seconds": seconds,
            "rounds": rounds,
            "configs": CONFIGS,
        },
        "results": results,
        "chosen": pick(results),
        "errors": sum(row["errors"] for r in results.values() for row in r["levels"].values()),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "batching.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "batching.md").write_text(markdown(report))
    typer.echo(f"wrote {out / 'batching.md'} and {out / 'batching.json'}")
    typer.echo(f"chosen window: {report['chosen']}; errors: {report['errors']}")


if __name__ == "__main__":
    app()
