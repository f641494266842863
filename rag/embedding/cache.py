"""Embedding cache keyed by (model key, sha256 of the chunk text): an unchanged chunk is never encoded twice.

Layout: `<cache_dir>/<model-slug>/shard-<n>.npz`, each shard holding `keys` (sha256 digests, 32 bytes each)
and `vectors` (float32). Shards are append-only and written atomically (temporary file + rename), so a
crash mid-build loses at most the shard being written and a later build resumes from the others.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    def __init__(self, cache_dir: Path, model_key: str, dimension: int):
        self.dir = Path(cache_dir) / re.sub(r"[^A-Za-z0-9._=-]+", "_", model_key)
        self.dimension = dimension
        self._rows: dict[bytes, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._load()

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("shard-*.npz"), key=lambda p: int(p.stem.split("-")[1])):
            try:
                with np.load(path, allow_pickle=False) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except Exception as exc:  # a damaged shard is skipped, never trusted
                log.warning("ignoring unreadable embedding cache shard %s: %s", path, exc)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != self.dimension or len(keys) != len(vectors):
                log.warning("ignoring embedding cache shard %s with wrong shape %s", path, vectors.shape)
                continue
            shard = len(self._shards)
            self._shards.append(vectors)
            for row, key in enumerate(keys):
                self._rows[bytes(key)] = (shard, row)

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: bytes) -> np.ndarray | None:
        hit = self._rows.get(key)
        return None if hit is None else self._shards[hit[0]][hit[1]]

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Persist a batch as a new shard (atomic) and make it available at once."""
        if len(keys) == 0:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        number = 1 + max((int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.npz")), default=0)
        final = self.dir / f"shard-{number}.npz"
        tmp = self.dir / f".shard-{number}.{os.getpid()}.tmp.npz"
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        with open(tmp, "wb") as handle:
            np.savez(handle, keys=key_array, vectors=vectors.astype(np.float32))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        shard = len(self._shards)
        self._shards.append(vectors.astype(np.float32))
        for row, key in enumerate(keys):
            self._rows[key] = (shard, row)


def encode_with_cache(
    texts: Sequence[str],
    encode: Callable[[Sequence[str]], np.ndarray],
    cache: EmbeddingCache,
    batch: int = 2048,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` (in order), encoding only cache misses, in shards of `batch` texts.

    Returns (vectors, number encoded). Each shard is persisted as soon as it is encoded, so an
    interrupted build keeps its progress.
    """
    keys = [text_key(t) for t in texts]
    out = np.zeros((len(texts), cache.dimension), dtype=np.float32)
    missing: dict[bytes, list[int]] = {}
    for i, key in enumerate(keys):
        vector = cache.get(key)
        if vector is None:
            missing.setdefault(key, []).append(i)
        else:
            out[i] = vector
    todo = list(missing)
    for start in range(0, len(todo), batch):
        batch_keys = todo[start : start + batch]
        vectors = encode([texts[missing[k][0]] for k in batch_keys])
        cache.add(batch_keys, vectors)
        for key, vector in zip(batch_keys, vectors):
            out[missing[key]] = vector
        if on_progress:
            on_progress(len(batch_keys))
    return out, len(todo)
