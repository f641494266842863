"""Which encoder embeds queries: the numpy forward pass (`NumpyMiniLMEncoder`) or torch (`MiniLMEncoder`).

`auto` (the default) takes numpy whenever the queries would run on the CPU anyway and the model is one it
computes exactly; torch when a GPU can be used (RAG_DEVICE=cuda, or auto with a CUDA build of torch), when
RAG_QUERY_ENCODER=torch, or when the model is not a BERT mean-pooling model. Deciding never imports torch:
whether the installed torch is a CUDA build is read from its version file.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from rag.embedding.encoder import Encoder
from rag.embedding.minilm import MiniLMEncoder, default_model_path
from rag.embedding.numpy_minilm import NumpyMiniLMEncoder, supported

_CUDA_LINE = re.compile(r"^cuda\s*(?::[^=]*)?=\s*['\"]", re.MULTILINE)


def query_encoder(model_path: Path | None = None, device: str = "auto", kind: str = "auto") -> Encoder:
    """The encoder for queries of an index built with `model_path` (None: the base model)."""
    path = Path(model_path) if model_path else default_model_path()
    if kind == "numpy" or (kind == "auto" and device != "cuda" and not (device == "auto" and torch_has_cuda()) and supported(path) is None):
        return NumpyMiniLMEncoder(model_path=path)
    return MiniLMEncoder(model_path=path, device=device)


def torch_has_cuda() -> bool:
    """Whether the installed torch was built with CUDA (without importing it). A CPU build never sees a GPU."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        return bool(_CUDA_LINE.search(version.read_text()))
    except OSError:
        return True  # unknown: let torch decide
