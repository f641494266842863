"""What every CLI command shares: option types, logging, the one mapping of errors to exit codes, output.

Results go to stdout, progress and logs to stderr. Heavy imports happen inside functions, so `--help`
and the commands that need no model stay fast.
"""

from __future__ import annotations

import json
import logging
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Optional

import typer

IndexDir = Annotated[Path, typer.Option("--index-dir", help="Index directory.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Slug = Annotated[str, typer.Argument(help="Pattern slug, e.g. pull-based-replenishment.")]
ContextOpt = Annotated[Optional[str], typer.Option("--context", help="Reader context: one of the index's contexts (see `rag facets`).")]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@lru_cache(maxsize=1)
def encoder():
    from rag.embedding.minilm import MiniLMEncoder

    return MiniLMEncoder()


def milvus_settings():
    """RAG_MILVUS_URI / RAG_MILVUS_TOKEN / RAG_MILVUS_TIMEOUT_S / RAG_MILVUS_PREFIX, read here at the edge only."""
    import os

    from rag.config import MilvusSettings

    try:
        return MilvusSettings.from_env(os.environ)
    except ValueError as exc:
        fail(str(exc))


def load_state(index_dir: Path, milvus=None):
    """The served state of `index_dir`, or a clean exit with the index's own message."""
    from rag.errors import RagError
    from rag.serve.service import State

    try:
        return State.load(index_dir, encoder(), milvus=milvus or milvus_settings())
    except RagError as exc:
        fail(str(exc))


def run(call):
    """Run a service call; a deliberate error becomes `error: <field>: <message>` and exit code 2."""
    from rag.errors import RagError

    try:
        return call()
    except RagError as exc:
        fail(f"{exc.field}: {exc}" if exc.field else str(exc))


def print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def new_table(title: str, *columns: str):
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for name in columns:
        out.add_column(name, no_wrap=name in ("slug", "rank"), overflow="fold")
    return out


def print_rich(renderable) -> None:
    from rich.console import Console

    Console(soft_wrap=False).print(renderable)
