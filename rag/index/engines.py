"""The engine registry and the builder seam: what `rag.index.build` and `rag.index.search_index` ask of an engine kind.

An engine kind (`Backend`) builds its part of a build (`EngineBuilder`), says whether a previous build of its kind
is still served (an up-to-date check must not trust a build whose Milvus collections are gone), and opens a
build's `Engine` for search. The builder writes its local files into the build's temporary folder (`save`), may
hold state outside it (Milvus collections: `start` notes what exists, `discard` drops what a failed build made,
`finish` drops what the pruned builds named), and says what the manifest records of it (`vectors`, `record`).
Kinds are looked up by name, their modules imported only when used (pymilvus is an optional extra).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.config import BuildSettings, MilvusSettings, VectorSettings
from rag.errors import ConfigError, IndexCorrupt
from rag.index.engine import Engine
from rag.records.chunk import Chunk
from rag.records.manifest import Manifest, MilvusRecord
from rag.records.pattern import Pattern

if TYPE_CHECKING:
    pass


class EngineBuilder(Protocol):
    kind: str

    @property
    def vectors(self) -> VectorSettings:
        """The vector index settings as built (an IVF index records the list count it chose)."""
        ...

    @property
    def record(self) -> MilvusRecord | None:
        """Where the build lives outside its folder (the manifest's `milvus`), once saved; None for files only."""
        ...

    def save(self, build_dir: Path) -> None:
        """Write this engine's part of the build (its files into `build_dir`, its collections on its server)."""
        ...

    def start(self, index_dir: Path) -> None:
        """Called under the build lock before the build is written."""
        ...

    def discard(self) -> None:
        """The build failed after `save`: remove what it wrote outside its folder."""
        ...

    def finish(self, index_dir: Path) -> None:
        """The build is current and older builds are pruned: remove what only the pruned builds used."""
        ...


class Backend(Protocol):
    kind: str

    def builder(self, settings: BuildSettings, patterns: Sequence[Pattern], chunks: Sequence[Chunk], vectors: np.ndarray,
                documents: dict[str, list[list[str]]], vector_settings: VectorSettings) -> EngineBuilder:
        ...

    def still_served(self, settings: BuildSettings, manifest: Manifest) -> bool:
        """Whether `manifest` (the previous build) is of this kind and its data is still where it says."""
        ...

    def open(self, build_dir: Path, manifest: Manifest, milvus: MilvusSettings | None) -> Engine:
        ...


@dataclass(frozen=True, slots=True)
class _Registered:
    module: str
    attribute: str


ENGINES: dict[str, _Registered] = {
    "embedded": _Registered("rag.index.embedded", "BACKEND"),
    "milvus": _Registered("rag.index.milvus.engine", "BACKEND"),
}


def backend(kind: str) -> Backend:
    """The engine kind named `kind` (a manifest's or a build's `engine`)."""
    found = ENGINES.get(kind)
    if found is None:
        raise ConfigError("engine", f"unknown engine {kind!r}; one of {', '.join(ENGINES)}")
    return getattr(importlib.import_module(found.module), found.attribute)


def open_engine(build_dir: Path, manifest: Manifest, milvus: MilvusSettings | None) -> Engine:
    """The engine a manifest names, opened for search."""
    if manifest.engine not in ENGINES:
        raise IndexCorrupt(f"index in {build_dir} names an unknown engine {manifest.engine!r}; run `rag index LIBRARY --rebuild`")
    return backend(manifest.engine).open(build_dir, manifest, milvus)
