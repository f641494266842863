"""The manifest of a library-adapted model folder (`rag adapt`): what it was trained from and how well it did.

An adapted folder is a sentence-transformers model plus `adapt-manifest.json`. Its identity is the sha256 of
its weights: `MiniLMEncoder` names the model `<base>+adapted@<hash>`, so the embedding cache key and the index
manifest of its vectors differ from the base model's (and from any other adaptation's), and vectors of two
models never mix. Weights that no longer match the recorded hash are refused (`ModelStale`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError

ADAPT_MANIFEST = "adapt-manifest.json"
ADAPT_FORMAT = 1
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HASH_CHARS = 16  # of the sha256 hex digest, in the model name (64 bits: no collision between a user's models)


class ModelStale(RagError):
    """An adapted model folder whose weights or manifest do not match (edited, half-copied or corrupt)."""


@dataclass(frozen=True, slots=True)
class AdaptManifest:
    base_model: str
    base_hash: str
    weights_hash: str
    library: str
    library_fingerprint: str
    pairs: dict[str, int]  # kind -> training pairs mined (held-out patterns' pairs excluded)
    held_out: tuple[str, ...]  # slugs whose pairs were never trained on
    epochs: int  # asked for
    epochs_run: int  # run before early stopping
    best_epoch: int
    seed: int
    validation: dict[str, Any]  # {"held_out": {"base": {...}, "adapted": {...}}, "eval": {...}}
    device: str
    seconds: float
    created_at: str
    forced: bool = False
    format: int = ADAPT_FORMAT
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["held_out"] = list(self.held_out)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptManifest:
        values = dict(data)
        values["held_out"] = tuple(values.get("held_out", ()))
        return cls(**values)


def weights_file(model_dir: Path) -> Path | None:
    return next((Path(model_dir) / name for name in WEIGHT_FILES if (Path(model_dir) / name).is_file()), None)


def weights_hash(model_dir: Path) -> str:
    """sha256 (hex) of the model's weight file; ModelStale when the folder has none."""
    path = weights_file(model_dir)
    if path is None:
        raise ModelStale(f"no weights ({' or '.join(WEIGHT_FILES)}) in {model_dir}; re-run `rag adapt`")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_adapted(model_dir: Path) -> bool:
    return (Path(model_dir) / ADAPT_MANIFEST).is_file()


def read_adapt_manifest(model_dir: Path) -> AdaptManifest:
    path = Path(model_dir) / ADAPT_MANIFEST
    try:
        return AdaptManifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelStale(f"{path} is missing: {model_dir} is not a `rag adapt` model folder", field="model") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelStale(f"{path} is unreadable ({type(exc).__name__}: {exc}); re-run `rag adapt`", field="model") from None


def write_adapt_manifest(model_dir: Path, manifest: AdaptManifest) -> Path:
    path = Path(model_dir) / ADAPT_MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
    return path


def adapted_name(base_model: str, weights: str) -> str:
    """The model name an adapted folder's vectors are recorded under (cache key, index manifest)."""
    return f"{base_model}+adapted@{weights[:HASH_CHARS]}"


def check_weights(model_dir: Path, manifest: AdaptManifest) -> None:
    """ModelStale when the weights on disk are not the ones `rag adapt` wrote."""
    actual = weights_hash(model_dir)
    if actual != manifest.weights_hash:
        raise ModelStale(
            f"the weights in {model_dir} (sha256 {actual[:HASH_CHARS]}) are not the ones its manifest records "
            f"({manifest.weights_hash[:HASH_CHARS]}): the folder was altered or half-copied; re-run `rag adapt`",
            field="model",
        )
