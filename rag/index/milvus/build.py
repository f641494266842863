"""A build's Milvus side, as the builder (`rag.index.build`) sees it: written inside the build lock, before the
local `current` link moves; dropped again when the local build fails; older builds' collections dropped when
the index directory prunes their local folders (only collections this directory's manifests named, so
other indexes on the same server are never touched).

Incremental builds: the embedding cache and chunk reuse mean an unchanged chunk is never re-encoded, but every
build uploads all rows into fresh collections. Upserting only changed rows into the served collections
would let readers see a half-updated build (an upsert is a delete plus an insert: a reader can miss the row,
measured in NOTES.md T5) and would shift the row numbers the local chunks.jsonl maps hits through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.config import LexicalSettings, MilvusSettings, VectorSettings
from rag.errors import IndexError_
from rag.index.milvus.client import connect, guarded, redact
from rag.index.milvus.collections import drop, move_alias, write_build
from rag.index.postings import Postings
from rag.index.store import POSTINGS
from rag.records.chunk import Chunk
from rag.records.manifest import Manifest, MilvusRecord, read_manifest
from rag.records.pattern import Pattern

log = logging.getLogger(__name__)


class MilvusBuild:
    """The builder seam (rag.index.engines) for Milvus: two fresh collections on the server, and the full-text
    postings (what query coverage reads) in the build folder."""

    kind = "milvus"

    def __init__(self, settings: MilvusSettings, patterns: Sequence[Pattern], chunks: Sequence[Chunk], vectors: np.ndarray,
                 documents: dict[str, list[list[str]]], vector_settings: VectorSettings, lexical: LexicalSettings):
        self.settings = settings
        self.vectors = vector_settings
        self.record: MilvusRecord | None = None
        self._postings = Postings.build(documents["fulltext"])
        self._before: set[str] = set()
        rows = {p.slug: i for i, p in enumerate(patterns)}
        self._args = (patterns, [c.id for c in chunks], np.array([rows[c.slug] for c in chunks], dtype=np.int64), vectors, documents, vector_settings, lexical)

    def save(self, build_dir: Path) -> None:
        """Write the collections (and move the alias where there is one), and the postings into `build_dir`."""
        self._postings.save(build_dir / POSTINGS)
        client = connect(self.settings)
        self.record = write_build(self.settings, client, *self._args)
        self.record = move_alias(self.settings, client, self.record)

    def start(self, index_dir: Path) -> None:
        self._before = referenced(index_dir)

    def discard(self) -> None:
        if self.record is not None:
            drop(self.settings, connect(self.settings), (self.record.chunks, self.record.patterns))

    def finish(self, index_dir: Path) -> None:
        self.prune(self._before, index_dir)

    def prune(self, before: set[str], index_dir: Path) -> list[str]:
        """Drop the collections named by builds that existed before this one and no longer do."""
        gone = sorted(before - referenced(index_dir))
        if gone:
            drop(self.settings, connect(self.settings), gone)
            log.info("dropped %d Milvus collections of pruned builds", len(gone))
        return gone


def referenced(index_dir: Path) -> set[str]:
    """Collections named by the Milvus builds in `index_dir/builds`."""
    out: set[str] = set()
    builds = Path(index_dir) / "builds"
    if not builds.is_dir():
        return out
    for build in builds.iterdir():
        if build.name.startswith(".") or not build.is_dir():
            continue
        try:
            manifest = read_manifest(build)
        except IndexError_:
            continue
        if manifest.milvus is not None:
            out.update((manifest.milvus.chunks, manifest.milvus.patterns))
    return out


def still_served(settings: MilvusSettings, manifest: Manifest) -> bool:
    """The previous build is on this server and its collections still exist (else an up-to-date check rebuilds)."""
    record = manifest.milvus
    if manifest.engine != "milvus" or record is None or record.uri != redact(settings.uri):
        return False
    client = connect(settings)
    return all(guarded(settings.uri, name, client.has_collection, name, timeout=settings.timeout_s) for name in (record.chunks, record.patterns))
