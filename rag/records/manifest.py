"""The manifest of a build: what was built, from what, with which model and settings, and every file's checksum.

This module is the only one that reads or writes `manifest.json`. `Manifest.from_dict` refuses a manifest
that lacks a field (the index is then reported corrupt, with the rebuild hint); unknown extra keys are kept
in `extra`, so a newer writer's additions survive a read-modify-write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rag.config import ChunkerSettings, LexicalSettings, VectorSettings
from rag.errors import IndexCorrupt

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REBUILD_HINT = "run `rag index LIBRARY --index-dir {dir} --rebuild`"


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """The encoder whose vectors a build holds (cache and manifest key)."""

    name: str
    dimension: int
    max_seq_length: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FileRecord:
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Counts:
    files: int = 0
    patterns: int = 0
    chunks: int = 0
    problems: int = 0
    errors: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MilvusRecord:
    """Where a Milvus build lives: the server (URI without credentials), its two collections (one per BM25
    corpus, so each corpus's statistics are its own), the alias moved to it when the server has aliases (None on
    Milvus Lite, which answers UNIMPLEMENTED), and how its text fields were analyzed."""

    uri: str
    chunks: str
    patterns: str
    alias: dict[str, str] | None = None
    analyzer: dict[str, Any] = field(default_factory=dict)
    index_type: str = "FLAT"
    prefix: str = "rag"
    truncated: int = 0  # BM25 documents cut to fit a VARCHAR (65,535 bytes); their tail is not searchable

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Manifest:
    format_version: int
    build_id: str
    built_at: str
    package_version: str
    library: str
    engine: str
    model: ModelRecord
    chunker: ChunkerSettings
    vectors: VectorSettings
    lexical: LexicalSettings
    counts: Counts
    sources: dict[str, str]  # library-relative path -> content hash
    files: dict[str, FileRecord] = field(default_factory=dict)
    milvus: MilvusRecord | None = None  # engine == "milvus" only
    device: str | None = None  # where the build encoded: "cpu" or "cuda"; None in builds from before it was recorded
    domains: dict[str, int] = field(default_factory=dict)  # patterns per domain (lower case): the shrink guard reads it
    fit: dict[str, Any] | None = None  # `rag fit`: the fitted ranking's file in the build (fit.json) and its figures
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes) -> Manifest:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["model"] = self.model.to_dict()
        out["chunker"] = self.chunker.to_dict()
        out["vectors"] = self.vectors.to_dict()
        out["lexical"] = self.lexical.to_dict()
        out["domains"] = dict(self.domains)
        out["counts"] = self.counts.to_dict()
        out["files"] = {name: asdict(meta) for name, meta in self.files.items()}
        if self.milvus is None:
            del out["milvus"]
        else:
            out["milvus"] = self.milvus.to_dict()
        if self.device is None:
            del out["device"]
        if self.fit is None:
            del out["fit"]
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Raises KeyError, TypeError or ValueError on a missing or mistyped field."""
        known = {f.name for f in fields(cls)}
        values = {name: data[name] for name in known - {"extra", "files", "engine", "milvus", "device", "domains", "fit"}}
        values["model"] = ModelRecord(**data["model"])
        values["chunker"] = ChunkerSettings.from_dict(data["chunker"])
        values["vectors"] = VectorSettings.from_dict(data["vectors"])
        values["lexical"] = LexicalSettings.from_dict(data["lexical"])
        values["counts"] = Counts(**data["counts"])
        values["files"] = {name: FileRecord(**meta) for name, meta in data.get("files", {}).items()}
        values["engine"] = data.get("engine", "embedded")  # builds before the engine seam were all embedded
        values["milvus"] = MilvusRecord(**data["milvus"]) if data.get("milvus") else None
        values["device"] = data.get("device")  # optional: older builds did not record it
        values["fit"] = data.get("fit") if isinstance(data.get("fit"), dict) else None
        values["domains"] = {str(k): int(v) for k, v in (data.get("domains") or {}).items()}  # older builds did not record it
        if values["device"] is not None and not isinstance(values["device"], str):
            raise TypeError("device must be a string")
        if values["engine"] == "milvus" and values["milvus"] is None:
            raise KeyError("milvus")
        if not isinstance(values["sources"], dict):
            raise TypeError("sources must be an object")
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})


def read_manifest(build_dir: Path) -> Manifest:
    """The manifest of `build_dir`; IndexCorrupt (with the rebuild hint) when missing, unreadable or incomplete."""
    path = Path(build_dir) / MANIFEST
    hint = REBUILD_HINT.format(dir=Path(build_dir).parent.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"{path} is missing; {hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"{path} is not valid JSON ({exc}); {hint}") from None
    if not isinstance(data, dict):
        raise IndexCorrupt(f"{path} is not a JSON object; {hint}")
    if data.get("format_version") != FORMAT_VERSION:
        from rag.errors import IndexIncompatible

        raise IndexIncompatible(f"index format {data.get('format_version')!r} is not the supported {FORMAT_VERSION}; {hint}")
    try:
        return Manifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorrupt(f"{path} is incomplete ({type(exc).__name__}: {exc}); {hint}") from None


def write_manifest(build_dir: Path, manifest: Manifest) -> Path:
    path = Path(build_dir) / MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
    return path
