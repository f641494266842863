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
    """Texts to L2-normalized float32 vectors. `info`, `loaded` and `runtime` must be cheap (no model load).

    `device` is where it encodes ("cpu" or "cuda"): a build records it in its manifest and /health reports it.
    Reading it may load the runtime (torch resolves "auto" by importing itself), so a light caller reads it only
    once `loaded` says the model is in memory. `runtime` names what computes the vectors ("torch", "numpy", ...)."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def device(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    @property
    def runtime(self) -> str: ...

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), info.dimension) float32, rows of unit length."""
        ...

    def encode_query(self, query: str) -> np.ndarray:
        """(info.dimension,) float32 of unit length."""
        ...
