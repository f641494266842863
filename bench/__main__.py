"""`python -m bench`: run the benchmark and write `<out>/<date>.json` and `<out>/<date>.md`.

Progress and logs go to stderr; the paths written and the goal table go to stdout.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder for <date>.json and <date>.md.")] = Path("eval/bench"),
    corpora: Annotated[Path, typer.Option("--corpora", help="Folder holding the libraries (commons-os, bmn).")] = Path("../shared/corpora"),
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Persistent embedding cache for the full library (reused by the next run).")
    ] = Path("index/cache"),
    library: Annotated[str, typer.Option("--library", help="The large library under --corpora.")] = "commons-os",
    subset_files: Annotated[
        int, typer.Option("--subset-files", min=1, help="Files (first in sorted order) of the cold-build subset.")
    ] = 150,
    cold_slices: Annotated[
        int, typer.Option("--cold-slices", min=1, help="Slices of the cold subset, each built right after its own floor.")
    ] = 5,
    queries: Annotated[int, typer.Option("--queries", min=1, help="Queries per latency figure (the dev sets, cycled).")] = 300,
    http_seconds: Annotated[float, typer.Option("--http-seconds", min=0.5, help="Seconds of load per HTTP concurrency level.")] = 20.0,
    scale_patterns: Annotated[
        int, typer.Option("--scale-patterns", min=100, help="Synthetic patterns of the scale test (about 10 vectors each).")
    ] = 100_000,
    skip: Annotated[
        str,
        typer.Option(
            "--skip",
            help="Comma-separated sections to skip: cold, rebuild, latency, txtai, http, memory, startup, adapt (rag adapt on the small "
            "library; its own adaptation.md), scale.",
        ),
    ] = "",
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A smoke run of a few minutes: tiny subset, short timings, small scale test, adaptation on a 10-file subset with 8 pairs.",
        ),
    ] = False,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Keep working files here (default: a temporary folder, removed).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Measure build, rebuild, query latency, txtai, HTTP, memory, library adaptation and scale; write the report."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import bm25s  # noqa: F401  (sets its own logger to DEBUG on import; quieted below)

    for noisy in ("httpx", "faiss", "sentence_transformers", "bm25s", "txtai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from bench.run import SECTIONS, BenchSettings, run_bench
    from bench.scale import ScaleSettings
    from bench.synthetic import SyntheticSpec

    skipped = frozenset(s.strip() for s in skip.split(",") if s.strip())
    unknown = sorted(skipped - set(SECTIONS))
    if unknown:
        typer.echo(f"error: unknown section {unknown[0]!r} in --skip; sections are {', '.join(SECTIONS)}", err=True)
        raise typer.Exit(2)
    if not (corpora / library).is_dir():
        typer.echo(f"error: library folder not found: {corpora / library} (give --corpora and --library)", err=True)
        raise typer.Exit(2)
    spec = SyntheticSpec(patterns=scale_patterns, topics=max(1, scale_patterns // 50))
    settings = BenchSettings(
        out=out,
        corpora=corpora,
        library=library,
        cache_dir=cache_dir,
        subset_files=subset_files,
        cold_slices=cold_slices,
        queries=queries,
        http_seconds=http_seconds,
        scale=ScaleSettings(spec=spec),
        skip=skipped,
        workdir=workdir,
    )
    if quick:
        settings = settings.quick_version()
    results, json_path, md_path = run_bench(settings)
    typer.echo(f"wrote {json_path} and {md_path}")
    for goal in results["goals"]:
        status = "n/a" if goal["met"] is None else "met" if goal["met"] else "NOT MET"
        typer.echo(f"[{goal['item']}] {goal['figure']}: {goal['value']} (goal {goal['goal']}) {status}")


if __name__ == "__main__":
    app()
