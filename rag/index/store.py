"""The on-disk index: a directory of plain files plus a verified manifest, swapped in atomically.

This module owns the layout; every other module names a build's files by the constants below.
Layout of an index directory D:
    D/current -> builds/<build-id>      a symlink, replaced atomically (rename) when a build completes
    D/builds/<build-id>/                manifest.json (rag.records.manifest), patterns.jsonl, chunks.jsonl,
                                        chunks-skipped.jsonl, problems.jsonl, hub-prior.npy, core-norms.npy, and the
                                        engine's files:
                                        embedded: vectors.npy (flat) or vectors.faiss, bm25-keywords/, bm25-patterns/, bm25-chunks/;
                                        milvus: postings-fulltext.npz (its vectors and BM25 live on the server)
    D/cache/                            the embedding cache (rag.embedding.cache)
    D/.lock                             held for a whole build; names the holder's pid and start time
A build is written to D/builds/.tmp-<id>, fsynced, renamed, and only then pointed at by `current`, so a
reader sees the previous complete build or the new complete build, never a partial one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import BuildLocked, IndexCorrupt, IndexIncompatible, IndexNotFound, StorageError
from rag.records.manifest import FORMAT_VERSION, REBUILD_HINT, FileRecord, Manifest, ModelRecord, read_manifest, write_manifest

__all__ = ["current_build", "read_manifest", "verify", "write_build", "build_lock", "file_sha256"]

PATTERNS, CHUNKS, PROBLEMS = "patterns.jsonl", "chunks.jsonl", "problems.jsonl"
SKIPPED = "chunks-skipped.jsonl"  # chunked, not encoded (ChunkerSettings.encodes): only the next build reads it
HUB = "hub-prior.npy"  # per-pattern hub prior (rag.index.priors)
FIT = "fit.json"  # `rag fit`: the learned fusion and calibration fitted to this library's judged queries
CORE = "core-norms.npy"  # per-pattern length of the sum of its core chunk vectors (rag.index.priors.core_norms)
VECTORS = {"flat": "vectors.npy", "ivf": "vectors.faiss", "hnsw": "vectors.faiss"}  # embedded engine, per vector kind
LEGACY_FLAT = "vectors.faiss"  # a flat build written before vectors.npy (rag.index.vectors says why)
BM25 = {"keywords": "bm25-keywords", "fulltext": "bm25-patterns", "passages": "bm25-chunks"}  # embedded engine
POSTINGS = "postings-fulltext.npz"  # Milvus engine: the full-text postings that coverage reads locally
LOCK = ".lock"

def storage_error(exc: OSError, index_dir: Path) -> StorageError:
    """An I/O failure while writing a build, as one line naming the path and the fix (the previous build is untouched)."""
    path = exc.filename or index_dir
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space on that device (older builds are in {Path(index_dir) / 'builds'}; the embedding cache can move with --cache-dir)"
        return StorageError(f"no space left on the device writing {path}; {fix}")
    if exc.errno == errno.EROFS:
        return StorageError(f"{path} is on a read-only file system; use a writable --index-dir")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"permission denied writing {path}; make the folder writable for this user or use another --index-dir")
    return StorageError(f"cannot write {path} ({exc.strerror or exc}); check the folder and retry")


def current_build(index_dir: Path) -> Path:
    link = Path(index_dir) / "current"
    if not link.exists():
        raise IndexNotFound(f"no index in {index_dir}: build one with `rag index LIBRARY --index-dir {index_dir}`")
    return link.resolve()


def verify(build_dir: Path, manifest: Manifest, expected_model: ModelRecord | None = None, only: tuple[str, ...] | None = None) -> None:
    """Refuse an index of another model, or whose files do not match their checksums (`only`: just these files,
    for a command that reads nothing else)."""
    hint = REBUILD_HINT.format(dir=build_dir.parent.parent)
    if expected_model is not None and manifest.model != expected_model:
        adapted = manifest.extra.get("model_path")  # built with a `rag adapt` model: a rebuild must name it again
        model_hint = (f"rebuild it with the model now in that folder: `rag index LIBRARY --index-dir {build_dir.parent.parent} --model {adapted} --rebuild`"
                      if adapted else hint)
        for key in ("name", "dimension", "max_seq_length"):
            got, want = getattr(manifest.model, key), getattr(expected_model, key)
            if got != want:
                raise IndexIncompatible(f"index was built with model {key}={got!r}, the server uses {want!r}; {model_hint}")
    if not manifest.files:
        raise IndexCorrupt(f"manifest lists no files; {hint}")
    for name, meta in manifest.files.items():
        if only is not None and name not in only:
            continue
        path = build_dir / name
        if not path.is_file():
            raise IndexCorrupt(f"index file {name} is missing; {hint}")
        if path.stat().st_size != meta.bytes:
            raise IndexCorrupt(f"index file {name} has {path.stat().st_size} bytes, the manifest says {meta.bytes} (truncated?); {hint}")
        if file_sha256(path) != meta.sha256:
            raise IndexCorrupt(f"index file {name} does not match its checksum (altered or corrupt); {hint}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Held for a whole build, taken before any work: a second build of the same directory fails at once, naming
    the holder. The lock is the kernel's (flock), so it dies with its process; the file keeps the last holder's
    pid and start time only to say who holds it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BuildLocked(f"another build is writing {index_dir} ({holder}); wait for it to finish") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_build(index_dir: Path, write_files: Callable[[Path], Manifest], keep: int = 2) -> Path:
    """Write a complete build and swap it in. `write_files(tmp)` writes the data files and returns their
    manifest; checksums, the build id, the time and the format version are filled in here. Returns the new build dir."""
    index_dir = Path(index_dir)
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    tmp = builds / f".tmp-{build_id}"
    tmp.mkdir()
    try:
        manifest = write_files(tmp).with_(
            format_version=FORMAT_VERSION,
            build_id=build_id,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            files={p.relative_to(tmp).as_posix(): FileRecord(p.stat().st_size, file_sha256(p)) for p in sorted(tmp.rglob("*")) if p.is_file()},
        )
        write_manifest(tmp, manifest)
        _fsync_tree(tmp)
        final = builds / build_id
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = index_dir / f".current-{build_id}"
    os.symlink(Path("builds") / build_id, link_tmp)
    os.replace(link_tmp, index_dir / "current")
    _fsync_dir(index_dir)
    _prune(builds, final, keep)
    return final


def _prune(builds: Path, current: Path, keep: int) -> None:
    """Remove older builds (a reader that still has one open keeps its already-loaded data) and stale temp dirs."""
    done = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in [p for p in done if p != current][: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in builds.glob(".tmp-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_fitted(index_dir: Path, fit: bytes | None, record: dict | None) -> Path:
    """A new build that is the current one with `fit` as its FIT file (None: without one), named in its manifest as
    `record`; the other files are hard links to the current build's (copies across file systems). Swapped in like any
    build, under the build lock, so a reader sees the old or the new build whole."""
    index_dir = Path(index_dir)
    with build_lock(index_dir):
        source = current_build(index_dir)
        manifest = read_manifest(source)
        verify(source, manifest)

        def write_files(tmp: Path) -> Manifest:
            for name in manifest.files:
                if name == FIT:
                    continue
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source / name, target)
                except OSError:
                    shutil.copy2(source / name, target)
            if fit is not None:
                (tmp / FIT).write_bytes(fit)
            return manifest.with_(fit=record if fit is not None else None)

        return write_build(index_dir, write_files)
