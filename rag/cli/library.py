"""`rag validate` and `rag index`: check a library, build or refresh its index."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import IndexDir, JsonFlag, MaxFileMb, encoder, fail, setup_logging

DEFAULT_MAX_FILE_MB = 2.0  # BuildSettings.max_file_bytes, in MB


def validate(
    library: Annotated[Path, typer.Argument(help="Pattern library folder.")],
    max_file_mb: MaxFileMb = DEFAULT_MAX_FILE_MB,
    show_all: Annotated[bool, typer.Option("--all", help="List every problem, not the first few of each kind.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load a library and report its counts and problems by kind (the first few of each; --all lists every one);
    exit 1 when any error-level problem exists, 2 when the folder is missing or holds no pattern files."""
    from rag.load.library import load_library

    try:
        report = load_library(library, _max_file_bytes(max_file_mb))
    except FileNotFoundError as exc:
        fail(str(exc))
    if report.files == 0:
        fail(f"no pattern files (*.md) in {library}; nothing to validate")  # as `rag index` says (LibraryError)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from rag.cli.render import problems_lines, width

        typer.echo("\n".join(problems_lines(report, width(), show_all)))
    raise typer.Exit(1 if report.errors else 0)


def index(
    library: Annotated[Path, typer.Argument(help="Pattern library folder.")],
    index_dir: IndexDir = Path("index"),
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Ignore the previous build; re-chunk everything (cached vectors are still reused).")
    ] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache (default: INDEX_DIR/cache).")] = None,
    vector_index: Annotated[str, typer.Option("--vector-index", help="flat (exact), ivf or hnsw.")] = "flat",
    max_file_mb: MaxFileMb = DEFAULT_MAX_FILE_MB,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="embedded (FAISS + bm25s files in INDEX_DIR) or milvus (collections on a Milvus server; INDEX_DIR keeps the manifest and "
            "texts).",
        ),
    ] = "embedded",
    milvus_uri: Annotated[
        str | None,
        typer.Option(
            "--milvus-uri",
            help="Milvus server for --engine milvus (default $RAG_MILVUS_URI, else http://127.0.0.1:19530); credentials only from "
            "$RAG_MILVUS_TOKEN.",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="An adapted model folder (`rag adapt`) instead of the base all-MiniLM-L6-v2; the index then names it, and search, serve "
            "and eval use it.",
        ),
    ] = None,
    max_windows: Annotated[
        int | None,
        typer.Option(
            "--max-windows",
            min=0,
            help="Encode only the first N windows of each long section (0: all; default from the chunker settings, "
            "eval/bench/chunk-kinds.md).",
        ),
    ] = None,
    skip_role: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-role", help="Do not encode chunks of this section role (repeatable; their words still count in full-text BM25)."
        ),
    ] = None,
    allow_shrink: Annotated[
        bool,
        typer.Option(
            "--allow-shrink", help="Build even when the library lost more than half of the current build's patterns, or a whole domain."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build or incrementally refresh the index of a library (progress on stderr)."""
    setup_logging()
    from dataclasses import replace

    from rag.cli.common import milvus_settings
    from rag.config import CHUNK_ROLES, DEFAULT_MILVUS_URI, BuildSettings, ChunkerSettings, MilvusSettings, VectorSettings
    from rag.errors import RagError
    from rag.index.build import build_index

    if vector_index not in ("flat", "ivf", "hnsw"):
        fail(f"--vector-index must be flat, ivf or hnsw, got {vector_index!r}")
    if engine not in ("embedded", "milvus"):
        fail(f"--engine must be embedded or milvus, got {engine!r}")
    if milvus_uri is not None and engine != "milvus":
        fail("--milvus-uri needs --engine milvus")
    if not library.is_dir():
        fail(f"pattern library folder not found: {library}")
    if model is not None:
        from rag.embedding.adapted import is_adapted

        if not is_adapted(model):
            fail(f"--model {model} is not a `rag adapt` model folder (it has no adapt-manifest.json)")
        model = model.resolve()
    milvus = None
    if engine == "milvus":
        milvus = (milvus_settings() or MilvusSettings()).with_(**({"uri": milvus_uri} if milvus_uri else {})).at(DEFAULT_MILVUS_URI)
        if vector_index == "hnsw":
            typer.echo("note: Milvus Lite has no HNSW (FLAT and IVF_FLAT only); Standalone and Distributed have it", err=True)
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="chunk" if stage == "encode" else "pattern", file=sys.stderr)
        bar.update(done - bar.n)

    chunker = ChunkerSettings()
    if max_windows is not None:
        chunker = replace(chunker, max_windows=max_windows)
    if skip_role is not None:
        unknown = sorted(set(skip_role) - set(CHUNK_ROLES))
        if unknown:
            fail(f"--skip-role: unknown role {', '.join(unknown)}; roles: {', '.join(CHUNK_ROLES)}")
        chunker = replace(chunker, skip_roles=tuple(sorted(set(skip_role))))
    settings = BuildSettings(
        library=library,
        index_dir=index_dir,
        cache_dir=cache_dir,
        rebuild=rebuild,
        vectors=VectorSettings(kind=vector_index),
        max_file_bytes=_max_file_bytes(max_file_mb),
        engine=engine,
        milvus=milvus,
        chunker=chunker,
        allow_shrink=allow_shrink,
    )
    try:
        summary = build_index(settings, encoder(model), progress)
    except RagError as exc:
        for bar in bars.values():  # the bars end before the one-line error, never after it
            bar.close()
        fail(str(exc))
    for bar in bars.values():
        bar.close()
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        typer.echo(summary_sentence(summary, index_dir))


def summary_sentence(summary, index_dir: Path) -> str:
    """The build summary as a sentence (`--json` gives the whole record)."""
    if summary.up_to_date:
        return f"Index {index_dir} is up to date: build {summary.build_id}, {summary.patterns} patterns, {summary.chunks} chunks."
    problems = (
        f"{summary.problems} problems ({summary.errors} errors; `rag validate {summary.library}` lists them)"
        if summary.problems
        else "no problems"
    )
    stages = ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in summary.seconds.items())
    total = sum(summary.seconds.values())
    where = f" on {summary.device}" if summary.device and summary.chunks_encoded else ""
    repaired = f" The previous build could not be trusted ({summary.repaired}): rebuilt from scratch." if summary.repaired else ""
    return (
        f"Built {summary.build_id} in {total:.1f} s ({stages}): {summary.patterns} patterns from {summary.files} files, "
        f"{summary.chunks} chunks ({summary.chunks_encoded} encoded{where}, {summary.chunks_reused} from the cache), {problems}.{repaired}"
    )


def _max_file_bytes(mb: float) -> int:
    return int(mb * 1024 * 1024)
