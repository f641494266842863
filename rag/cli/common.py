"""What every CLI command shares: option types, logging, the one mapping of errors to exit codes, output.

Results go to stdout, progress and logs to stderr. Heavy imports happen inside functions, so `--help`
and the commands that need no model stay fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import typer

IndexDir = Annotated[Path, typer.Option("--index-dir", help="Index directory.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Slug = Annotated[str, typer.Argument(help="Pattern slug, e.g. pull-based-replenishment.")]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="Reader context: only patterns labelled for it, shown in its words. The index's own contexts come from `rag facets`.",
    ),
]
DomainOpt = Annotated[str | None, typer.Option("--domain", help="Only this domain; `rag facets` lists the index's domains.")]
StatusOpt = Annotated[str | None, typer.Option("--status", help="Only this lifecycle status; `rag facets` lists the index's statuses.")]
MinConfidenceOpt = Annotated[
    float | None,
    typer.Option(
        "--min-confidence", help="Only patterns whose confidence is at least this, on the 0-1 scale (five stars = 1.0; see `rag facets`)."
    ),
]


MaxFileMb = Annotated[
    float, typer.Option("--max-file-mb", min=0.001, help="Largest pattern file read, in MB; a larger one is reported as an error.")
]


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """This package's INFO lines on stderr (WARNING when quiet: the read commands); other libraries' only
    from WARNING up (faiss announces its instruction set at INFO, bm25s logs at DEBUG), unless verbose."""
    if not verbose:  # transformers' "Loading weights" bar; read when huggingface_hub is first imported (later)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("rag").setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    if not verbose:
        for noisy in ("bm25s", "faiss", "faiss.loader"):  # bm25s sets its own logger to DEBUG with its own handler
            logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@lru_cache(maxsize=4)
def query_encoder(model: Path | None = None):
    """What encodes queries of an index built with `model` (None: the base model): the numpy forward pass
    unless a GPU can be used or RAG_QUERY_ENCODER=torch (rag.embedding.choose); the same vectors either way."""
    from rag.config import device_from_env, query_encoder_from_env
    from rag.embedding.choose import query_encoder as choose

    return choose(model, device=_from_env(device_from_env), kind=_from_env(query_encoder_from_env))


def _from_env(read):
    """A setting `read` from the environment, or the CLI's error naming the variable."""
    try:
        return read(os.environ)
    except ValueError as exc:
        fail(str(exc))


@lru_cache(maxsize=4)
def encoder(model: Path | None = None):
    """The base all-MiniLM-L6-v2, or the adapted model folder `model` (`rag adapt`), on the device RAG_DEVICE
    names (cpu, cuda; default auto: CUDA when torch sees a GPU, else the CPU)."""
    from rag.config import device_from_env
    from rag.embedding.minilm import MiniLMEncoder

    return MiniLMEncoder(model_path=model, device=_from_env(device_from_env))


def index_encoder(index_dir: Path):
    """The query encoder for the model an index was built with: its manifest names an adapted model's folder
    (`model_path`), else the base model (rag.api.encoder); a gone model folder exits 2 with what to do."""
    from rag.api.encoder import index_model_path
    from rag.errors import RagError

    try:
        path = index_model_path(index_dir)
    except RagError as exc:
        fail(str(exc))
    return query_encoder(path) if path else query_encoder()


def milvus_settings():
    """RAG_MILVUS_URI / RAG_MILVUS_TOKEN / RAG_MILVUS_TIMEOUT_S / RAG_MILVUS_PREFIX, read here at the edge only."""
    import os

    from rag.config import MilvusSettings

    try:
        return MilvusSettings.from_env(os.environ)
    except ValueError as exc:
        fail(str(exc))


def load_state(index_dir: Path, warm: bool = False, milvus=None):
    """The served state of `index_dir`, or a clean exit with the index's own message. The model loads
    on the first search (`warm=False`), so commands that read patterns never import torch."""
    if not logging.getLogger().handlers:  # rag serve and rag mcp set up logging first, at INFO
        setup_logging(quiet=True)
    from rag.errors import RagError
    from rag.serve.state import State

    try:
        return State.load(index_dir, index_encoder(index_dir), warm=warm, milvus=milvus or milvus_settings())
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
