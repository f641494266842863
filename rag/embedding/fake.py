"""A deterministic, model-free encoder for unit tests: hashed word and character-trigram features.

Texts that share words (or spellings) get similar vectors, so ranking tests behave like a weak
semantic model; the same text always gives the same vector on every machine. Never used in serving.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from rag.embedding.encoder import ModelInfo

_WORD = re.compile(r"[a-z0-9]+")
FAKE_MODEL_NAME = "fake/hashed-words-trigrams"


class FakeEncoder:
    runtime = "fake"
    loaded = True  # nothing to load

    def __init__(self, dimension: int = 64, max_seq_length: int = 256, device: str = "cpu"):
        self._info = ModelInfo(FAKE_MODEL_NAME, "(none)", dimension, max_seq_length)
        self.device = device  # only reported (manifest, /health), as a real encoder's is
        self.calls = 0  # encode calls (batches), for tests of batching and caching

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _features(self, text: str) -> list[tuple[int, float]]:
        words = _WORD.findall(text.lower())
        out = [(_bucket("w:" + w, self._info.dimension), 1.0) for w in words]
        for w in words:
            padded = f"#{w}#"
            out.extend((_bucket("t:" + padded[i : i + 3], self._info.dimension), 0.3) for i in range(len(padded) - 2))
        return out

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        self.calls += 1
        vectors = np.zeros((len(texts), self._info.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for bucket, weight in self._features(text):
                vectors[row, abs(bucket)] += weight if bucket >= 0 else -weight
            norm = float(np.linalg.norm(vectors[row]))
            if norm == 0.0:
                vectors[row, 0] = 1.0
            else:
                vectors[row] /= norm
        return vectors

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])[0]


def _bucket(feature: str, dimension: int) -> int:
    """A signed bucket in [-(dimension-1), dimension-1] (the sign halves collisions' bias)."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
    bucket = digest % dimension
    return bucket if (digest >> 63) & 1 == 0 else -bucket
