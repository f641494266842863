"""The encoder seam: what the index builder and the retriever need from a sentence-embedding model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from rag.records.manifest import ModelRecord


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    path: str
    dimension: int
    max_seq_length: int

    @property
    def key(self) -> str:
        """Identifies the vectors this model produces (cache and manifest key)."""
        return f"{self.name}|dim={self.dimension}|seq={self.max_seq_length}"

    @property
    def record(self) -> ModelRecord:
        """What the manifest records of the model (and what a server checks an index against)."""
        return ModelRecord(self.name, self.dimension, self.max_seq_length)


@runtime_checkable
class Encoder(Protocol):
    """Texts to L2-normalized float32 vectors. `info` must be cheap (no model load).

    An encoder may also say where it runs: a `device` attribute ("cpu" or "cuda"), which a build records in
    its manifest and /health reports; it is optional (read with getattr), so encoders without one still fit."""

    @property
    def info(self) -> ModelInfo: ...

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), info.dimension) float32, rows of unit length."""
        ...

    def encode_query(self, query: str) -> np.ndarray:
        """(info.dimension,) float32 of unit length."""
        ...
