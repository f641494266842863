"""The query encoder of an index: the model its manifest names (an adapted model's folder, else the base model).

Shared by the Python API and the CLI. Reading the choice never loads the model nor imports torch: the numpy
forward pass encodes queries on the CPU (`rag.embedding.choose`).
"""

from __future__ import annotations

from pathlib import Path

from rag.config import DeviceKind, QueryEncoderKind
from rag.embedding.choose import query_encoder
from rag.embedding.encoder import Encoder
from rag.errors import IndexIncompatible, RagError
from rag.index.store import current_build
from rag.records.manifest import read_manifest


def index_model_path(index_dir: Path) -> Path | None:
    """The adapted model folder `index_dir` was built with (`rag adapt`), or None for the base model and for a
    folder with no usable index (opening it then says why). IndexIncompatible when that model folder is gone:
    a moved or altered one is refused when it loads (its hash names the vectors)."""
    try:
        path = read_manifest(current_build(Path(index_dir))).extra.get("model_path")
    except RagError:
        return None
    if not path:
        return None
    if not Path(path).is_dir():
        raise IndexIncompatible(
            f"{index_dir} was built with the adapted model {path}, which is gone; restore it or rebuild with `rag index LIBRARY "
            f"--index-dir {index_dir} --model MODEL_DIR`"
        )
    return Path(path)


def index_encoder(index_dir: Path, device: DeviceKind = "auto", kind: QueryEncoderKind = "auto") -> Encoder:
    """What encodes queries of `index_dir`: the numpy forward pass on the CPU unless a GPU can be used or `kind`
    is "torch" (the same vectors either way)."""
    return query_encoder(index_model_path(index_dir), device=device, kind=kind)
