"""A built index opened for serving: verified, loaded once, immutable afterwards."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .chunking import Chunk
from .lexical import LexicalIndex
from .records import Pattern, Problem
from .store import IndexCorrupt, IndexError_, current_build, read_manifest, verify
from .vectors import VectorIndex, VectorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchIndex:
    build_dir: Path
    manifest: dict
    patterns: tuple[Pattern, ...]
    chunks: tuple[Chunk, ...]
    chunk_pattern: np.ndarray  # int32: chunk row -> pattern row
    vectors: VectorIndex
    keywords: LexicalIndex  # per pattern: title, aliases, vector keywords, primary tension
    fulltext: LexicalIndex  # per pattern: the whole text
    passages: LexicalIndex  # per chunk (evidence for lexical matches)
    problems: tuple[Problem, ...]

    @property
    def version(self) -> str:
        return str(self.manifest["build_id"])

    @property
    def slug_row(self) -> dict[str, int]:
        return self._slug_row

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slug_row", {p.slug: i for i, p in enumerate(self.patterns)})

    def pattern(self, slug: str) -> Pattern | None:
        row = self._slug_row.get(slug)
        return None if row is None else self.patterns[row]

    @classmethod
    def open(cls, index_dir: Path, expected_model: dict | None = None) -> SearchIndex:
        """Resolve `current`, verify the manifest and every checksum, then load. Raises IndexError_ subclasses."""
        build = current_build(Path(index_dir))
        manifest = read_manifest(build)
        verify(build, manifest, expected_model)
        try:
            patterns = tuple(Pattern.from_dict(row) for row in _read_jsonl(build / "patterns.jsonl"))
            chunks = tuple(Chunk(**row) for row in _read_jsonl(build / "chunks.jsonl"))
            problems = tuple(Problem(**row) for row in _read_jsonl(build / "problems.jsonl"))
            vectors = VectorIndex.load(build / "vectors.faiss", VectorSettings(**manifest["vectors"]))
            keywords = LexicalIndex.load(build / "bm25-keywords")
            fulltext = LexicalIndex.load(build / "bm25-patterns")
            passages = LexicalIndex.load(build / "bm25-chunks")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorrupt(f"index in {build} cannot be read ({exc}); run `rag index LIBRARY --rebuild`") from exc
        rows = {p.slug: i for i, p in enumerate(patterns)}
        try:
            chunk_pattern = np.fromiter((rows[c.slug] for c in chunks), dtype=np.int32, count=len(chunks))
        except KeyError as exc:
            raise IndexCorrupt(f"chunk of unknown pattern {exc}; run `rag index LIBRARY --rebuild`") from None
        counts = manifest.get("counts", {})
        if (len(patterns), len(chunks)) != (counts.get("patterns"), counts.get("chunks")) or vectors.size != len(chunks) or keywords.size != len(patterns) or fulltext.size != len(patterns) or passages.size != len(chunks):
            raise IndexCorrupt(f"index in {build} is inconsistent (counts differ between files); run `rag index LIBRARY --rebuild`")
        return cls(build, manifest, patterns, chunks, chunk_pattern, vectors, keywords, fulltext, passages, problems)


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


__all__ = ["SearchIndex", "IndexError_"]
