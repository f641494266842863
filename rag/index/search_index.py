"""A built index opened for serving: verified, loaded once, immutable afterwards.

It holds what every face needs locally (the manifest, the patterns, the chunks and their pattern rows)
and the engine that searches vectors and BM25 fields (`rag.index.engine`). Chunk texts and pattern sections
stay in the build's files and are read on demand (`rag.index.rows`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.config import MilvusSettings
from rag.errors import IndexCorrupt
from rag.index.engine import Engine
from rag.index.engines import open_engine
from rag.index.rows import ChunkTable, JsonRows, SectionsOnDisk
from rag.index.store import CHUNKS, CORE, FIT, HUB, PATTERNS, PROBLEMS, current_build, read_manifest, verify
from rag.records.manifest import Manifest, ModelRecord
from rag.records.pattern import Pattern, Problem

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SearchIndex:
    build_dir: Path
    manifest: Manifest
    patterns: tuple[Pattern, ...]  # their sections read from disk on demand
    chunks: ChunkTable  # roles, contexts and parts resident; whole chunks (texts) read on demand
    chunk_pattern: np.ndarray  # int32: chunk row -> pattern row
    engine: Engine
    problems: tuple[Problem, ...]
    hub: np.ndarray | None = None  # per-pattern hub prior (rag/index/priors.py); None for builds made before it
    core_norms: np.ndarray | None = None  # per-pattern |sum of core chunk vectors| (rag/index/priors.py); None likewise
    fit: dict | None = None  # `rag fit`'s ranking for this library (fit.json): {"ranker": ..., "calibration": ...}
    _slug_row: dict[str, int] = field(init=False, repr=False, compare=False)
    _chunk_start: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slug_row", {p.slug: i for i, p in enumerate(self.patterns)})
        cp = self.chunk_pattern
        contiguous = len(cp) == 0 or bool(np.all(np.diff(cp) >= 0))
        starts = np.searchsorted(cp, np.arange(len(self.patterns) + 1), "left") if contiguous else np.zeros(0, np.int64)
        object.__setattr__(self, "_chunk_start", starts)

    @property
    def version(self) -> str:
        return self.manifest.build_id

    @property
    def slug_row(self) -> dict[str, int]:
        return self._slug_row

    @property
    def vectors(self):
        """The embedded engine's FAISS index (tests and the bench look inside it)."""
        return self.engine.vectors  # type: ignore[attr-defined]

    def pattern(self, slug: str) -> Pattern | None:
        row = self._slug_row.get(slug)
        return None if row is None else self.patterns[row]

    def chunk_rows(self, pattern_row: int) -> np.ndarray:
        """The chunk rows of one pattern, in build order."""
        if len(self._chunk_start):
            return np.arange(self._chunk_start[pattern_row], self._chunk_start[pattern_row + 1])
        return np.flatnonzero(self.chunk_pattern == pattern_row)

    @classmethod
    def open(cls, index_dir: Path, expected_model: ModelRecord | None = None, milvus: MilvusSettings | None = None) -> SearchIndex:
        """Resolve `current`, verify the manifest and every checksum, then load. Raises IndexError_ subclasses.

        `milvus` (URI override and credentials, from the edge) is used when the manifest's engine is Milvus."""
        build = current_build(Path(index_dir))
        manifest = read_manifest(build)
        verify(build, manifest, expected_model)
        try:
            pattern_rows = JsonRows(build / PATTERNS)
            patterns = tuple(pattern_rows.scan(lambda i, row: Pattern.from_dict(row, SectionsOnDisk(pattern_rows, i))))
            chunks, chunk_slugs = ChunkTable.scan(build / CHUNKS)
            problems = tuple(Problem(**row) for row in _read_jsonl(build / PROBLEMS))
            engine = open_engine(build, manifest, milvus)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorrupt(f"index in {build} cannot be read ({exc}); run `rag index LIBRARY --rebuild`") from exc
        rows = {p.slug: i for i, p in enumerate(patterns)}
        try:
            chunk_pattern = np.fromiter((rows[slug] for slug in chunk_slugs), dtype=np.int32, count=len(chunk_slugs))
        except KeyError as exc:
            raise IndexCorrupt(f"chunk of unknown pattern {exc}; run `rag index LIBRARY --rebuild`") from None
        counts = manifest.counts
        sizes = engine.sizes()
        expected = {"vectors": len(chunks), "keywords": len(patterns), "fulltext": len(patterns), "passages": len(chunks)}
        if (len(patterns), len(chunks)) != (counts.patterns, counts.chunks) or sizes != expected:
            raise IndexCorrupt(f"index in {build} is inconsistent (counts differ between files); run `rag index LIBRARY --rebuild`")
        priors = {}
        for name in (HUB, CORE):  # per-pattern arrays; builds made before one was stored lack it (computed when needed)
            found = np.load(build / name) if name in manifest.files else None
            if found is not None and found.shape != (len(patterns),):
                raise IndexCorrupt(
                    f"index in {build} is inconsistent ({name} has {found.shape[0]} rows for {len(patterns)} patterns); "
                    "run `rag index LIBRARY --rebuild`"
                )
            priors[name] = found
        fit = None
        if manifest.fit is not None and FIT in manifest.files:
            try:
                fit = json.loads((build / FIT).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise IndexCorrupt(f"index in {build} cannot be read ({FIT}: {exc}); run `rag fit ... --reset` or rebuild") from exc
        return cls(build, manifest, patterns, chunks, chunk_pattern, engine, problems, priors[HUB], priors[CORE], fit)


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_pattern(index_dir: Path, slug: str) -> tuple[Manifest, Pattern | None]:
    """One pattern of the current build without opening the index (`rag show`): the manifest, the checksum of the
    patterns file alone, and the one row whose slug matches (no other row is parsed). None when no row matches."""
    build = current_build(Path(index_dir))
    manifest = read_manifest(build)
    if PATTERNS not in manifest.files:
        raise IndexCorrupt(f"manifest of {build} lists no {PATTERNS}; run `rag index LIBRARY --rebuild`")
    verify(build, manifest, only=(PATTERNS,))
    needle = json.dumps(slug, ensure_ascii=False).encode("utf-8")
    try:
        with open(build / PATTERNS, "rb") as handle:
            for line in handle:
                if needle in line:
                    row = json.loads(line)
                    if row.get("slug") == slug:
                        return manifest, Pattern.from_dict(row)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"index in {build} cannot be read ({exc}); run `rag index LIBRARY --rebuild`") from exc
    return manifest, None
