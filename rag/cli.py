"""Command-line interface: thin wrappers printing tables for people and JSON for programs.

Results go to stdout, progress and logs to stderr. Heavy imports happen inside commands so `--help` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search pattern libraries: validate, index, search, serve, evaluate.")

IndexDir = Annotated[Path, typer.Option("--index-dir", help="Index directory.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def _root() -> None:
    """Search pattern libraries: validate, index, search, serve, evaluate."""


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def validate(
    library: Annotated[Path, typer.Argument(help="Pattern library folder.")],
    as_json: JsonFlag = False,
) -> None:
    """Load a library and report counts and every problem; exit 1 when any error-level problem exists."""
    from .patterns import load_library

    try:
        report = load_library(library)
    except FileNotFoundError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        counts = Table("count", "value", title=f"library {library}")
        for key, value in report.counts().items():
            counts.add_row(key, str(value))
        console.print(counts)
        if report.problems:
            table = Table("severity", "file", "location", "reason", title="problems")
            for p in report.problems:
                table.add_row(p.severity, p.path, p.location, p.reason)
            console.print(table)
    raise typer.Exit(1 if report.errors else 0)


@app.command()
def index(
    library: Annotated[Path, typer.Argument(help="Pattern library folder.")],
    index_dir: IndexDir = Path("index"),
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the previous build; re-chunk everything (cached vectors are still reused).")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache (default: INDEX_DIR/cache).")] = None,
    vector_index: Annotated[str, typer.Option("--vector-index", help="flat (exact), ivf or hnsw.")] = "flat",
    as_json: JsonFlag = False,
) -> None:
    """Build or incrementally refresh the index of a library (progress on stderr)."""
    _setup_logging()
    from .embedding import Embedder
    from .indexer import BuildSettings, build_index
    from .store import IndexError_
    from .vectors import VectorSettings

    if vector_index not in ("flat", "ivf", "hnsw"):
        _fail(f"--vector-index must be flat, ivf or hnsw, got {vector_index!r}")
    if not library.is_dir():
        _fail(f"pattern library folder not found: {library}")
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="chunk" if stage == "encode" else "pattern", file=sys.stderr)
        bar.update(done - bar.n)

    settings = BuildSettings(library=library, index_dir=index_dir, cache_dir=cache_dir, rebuild=rebuild, vectors=VectorSettings(kind=vector_index))
    try:
        summary = build_index(settings, Embedder(), progress)
    except IndexError_ as exc:
        _fail(str(exc))
    finally:
        for bar in bars.values():
            bar.close()
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    elif summary.up_to_date:
        typer.echo(f"index {index_dir} is up to date (build {summary.build_id}, {summary.patterns} patterns, {summary.chunks} chunks)")
    else:
        typer.echo(
            f"built {summary.build_id}: {summary.files} files, {summary.patterns} patterns, {summary.chunks} chunks "
            f"({summary.chunks_encoded} encoded, {summary.chunks_reused} reused from cache), {summary.problems} problems "
            f"({summary.errors} errors); seconds: {summary.seconds}"
        )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
from . import cli_serve  # noqa: E402,F401  (registers search/show/related/serve/mcp)
from . import cli_eval  # noqa: E402,F401  (registers `rag eval`)
