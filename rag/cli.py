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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
