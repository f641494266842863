"""The admin operations: reload the served index, or rebuild it from its library and swap it in.

Nothing served changes here: both return a new `State` (or raise), and the caller swaps it in. On any error
(RebuildError, an IndexError_ such as BuildLocked or ShrinkRefused, StorageError) the previous state stays the
one to serve.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rag.config import BuildSettings, MilvusSettings, RetrieverSettings
from rag.embedding.encoder import Encoder
from rag.errors import RebuildError
from rag.index.build import BuildSummary, build_index
from rag.index.store import current_build, read_manifest
from rag.serve.state import State


def reload(
    state: State | None,
    index_dir: Path,
    embedder: Encoder,
    settings: RetrieverSettings | None = None,
    milvus: MilvusSettings | None = None,
    batching: tuple[float, int] | None = None,
) -> State:
    """The state of `index_dir`'s `current` build: `state` itself when that is already served, else freshly loaded.
    `state` may be None (the server's first load failed): the index is then loaded as at start-up."""
    if state is not None and current_build(Path(index_dir)).name == state.version:
        return state
    fresh = State.load(index_dir, embedder, settings, milvus=milvus)
    if batching is None and state is not None and state.batcher is not None:
        batching = (state.batcher.window_s * 1000.0, state.batcher.max_batch)
    if batching is not None:  # the new version batches as the old one did
        fresh = fresh.with_batching(*batching)
    if state is not None and state.admission is not None:  # and keeps the same bound (the searches it holds now)
        fresh = replace(fresh, admission=state.admission)
    return fresh


def rebuild(
    state: State | None,
    index_dir: Path,
    embedder: Encoder,
    library: Path | None = None,
    cache_dir: Path | None = None,
    settings: RetrieverSettings | None = None,
    milvus: MilvusSettings | None = None,
    allow_shrink: bool = False,
    batching: tuple[float, int] | None = None,
) -> tuple[BuildSummary, State]:
    """Rebuild `index_dir` from `library` (default: the library the current build was made from) with that build's
    chunker, vector index kind, BM25 parameters and engine, then open the result. Works without a served state
    (a failed first load) as long as the current build's manifest can be read or `library` is given."""
    manifest = state.index.manifest if state is not None else _manifest_or_none(index_dir)
    source = library or (manifest.library if manifest is not None else None)
    if not source or not Path(source).is_dir():
        raise RebuildError(f"pattern library folder not found: {source or '(none configured)'}; set RAG_LIBRARY to the folder to index")
    if manifest is not None:
        build = BuildSettings.from_manifest(
            manifest, Path(source), Path(index_dir), cache_dir=cache_dir, allow_shrink=allow_shrink, milvus=_milvus_of(manifest, milvus)
        )
    else:
        build = BuildSettings(library=Path(source), index_dir=Path(index_dir), cache_dir=cache_dir, allow_shrink=allow_shrink)
    summary = build_index(build, embedder)
    return summary, reload(state, index_dir, embedder, settings, milvus, batching)


def _manifest_or_none(index_dir: Path):
    from rag.errors import IndexError_

    try:
        return read_manifest(current_build(Path(index_dir)))
    except IndexError_:
        return None


def _milvus_of(manifest, milvus: MilvusSettings | None) -> MilvusSettings | None:
    """A reindex of a Milvus index writes to the server it was built on (or the configured one), same prefix."""
    if manifest.engine != "milvus" or manifest.milvus is None:
        return None
    return (milvus or MilvusSettings()).at(manifest.milvus.uri).with_(prefix=manifest.milvus.prefix)
