"""`rag adapt` end to end: load, split, mine, score the base, train with early stopping, guard, write atomically.

The model folder is written to a temporary sibling (`.NAME.tmp-<pid>`) and renamed into place only when it is
complete, so an interrupt (Ctrl-C) or a refusal leaves no half-written model; an existing adapted folder at
`out` is replaced by the rename, anything else there is refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.adapt import pairs as mining
from rag.adapt.train import TrainSettings, device_name, fit
from rag.adapt.validate import held_out_score, judged_score, read_judged
from rag.chunking import chunk_pattern, model_token_counter
from rag.config import ChunkerSettings
from rag.embedding.adapted import AdaptManifest, is_adapted, weights_hash, write_adapt_manifest
from rag.embedding.minilm import MODEL_NAME, default_model_path
from rag.errors import InputError, LibraryError, RagError
from rag.load.library import load_library

log = logging.getLogger(__name__)
GUARD_METRIC = "ndcg@10"
MAX_FILE_BYTES = 2 * 1024 * 1024  # BuildSettings.max_file_bytes


class WorseThanBase(RagError):
    """The adapted model ranks the held-out patterns worse than the base model; nothing was written.
    `report` carries the figures, so the command still prints them."""

    report: AdaptReport | None = None

    @classmethod
    def about(cls, report: AdaptReport, message: str, field: str | None = None) -> WorseThanBase:
        error = cls(message, field=field)
        error.report = report
        return error


@dataclass(frozen=True, slots=True)
class AdaptSettings:
    library: Path
    out: Path
    train: TrainSettings = TrainSettings()
    max_pairs: int | None = None
    force: bool = False
    eval_files: tuple[Path, ...] = ()
    held_out_share: float = mining.HELD_OUT_SHARE
    split_all: bool = False  # hold out a share of every pattern (mining.split among_all)


@dataclass(slots=True)
class AdaptReport:
    device: str = "cpu"
    patterns: int = 0
    held_out: list[str] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)
    negatives: int = 0
    base: dict = field(default_factory=dict)  # {"held_out": metrics, "<eval file>": metrics}
    adapted: dict = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    pairs_per_second: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    written: bool = False


def library_fingerprint(patterns) -> str:
    """sha256 over the sorted (path, content hash) of every pattern: what `rag index` calls the sources."""
    digest = hashlib.sha256()
    for path, content in sorted((p.path, p.content_hash) for p in patterns):
        digest.update(f"{path}\0{content}\n".encode())
    return digest.hexdigest()


def adapt(settings: AdaptSettings, on_step: Callable[[int, int, int], None] | None = None, model_path: Path | None = None) -> AdaptReport:
    """Train and write the adapted model; WorseThanBase (after the report is filled in) when the guard refuses.
    `model_path` is the model to start from (default: the packaged all-MiniLM-L6-v2)."""
    out = Path(settings.out)
    if out.exists() and not (out.is_dir() and (is_adapted(out) or not any(out.iterdir()))):
        raise InputError(f"{out} exists and is not a `rag adapt` model folder; choose another --out", field="out")
    judged = {str(path): read_judged(path) for path in settings.eval_files}
    report = AdaptReport(device=device_name())
    clock = time.perf_counter()
    loaded = load_library(settings.library, MAX_FILE_BYTES)
    patterns = loaded.patterns
    if not patterns:
        raise LibraryError(f"no patterns in {settings.library}; nothing to adapt to")
    training, held = mining.split(patterns, settings.train.seed, settings.held_out_share, settings.split_all)
    pairs = mining.cap(mining.mine(training), settings.max_pairs, settings.train.seed)
    if not pairs:
        raise LibraryError(f"{settings.library} yields no training pairs (no summaries, sections, labels or aliases)")
    report.patterns, report.held_out = len(patterns), [p.slug for p in held]
    report.pairs, report.negatives = mining.counts(pairs), sum(1 for p in pairs if p.negative)
    chunks = []
    if judged:
        count = model_token_counter()
        chunker = ChunkerSettings()  # the chunks a default build encodes and searches
        chunks = [c for p in patterns for c in chunk_pattern(p, count, chunker) if chunker.encodes(c)]
    report.seconds["mine"] = round(time.perf_counter() - clock, 2)

    from sentence_transformers import SentenceTransformer

    base_path = Path(model_path) if model_path else default_model_path()
    model = SentenceTransformer(str(base_path), device=report.device, local_files_only=True)
    log.info("training on %s", report.device)

    def encode(texts):
        return model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def figures() -> dict:
        out_ = {"held_out": held_out_score(encode, patterns, held)}
        for name, queries in judged.items():
            out_[name] = judged_score(encode, [c.slug for c in chunks], [c.text for c in chunks], queries)
        return out_

    def score(_model) -> float:  # early stopping: held-out nDCG@10, averaged with every judged file's
        current = figures()
        score.last = current  # type: ignore[attr-defined]
        score.by_epoch.append(current)  # type: ignore[attr-defined]
        return sum(m[GUARD_METRIC] for m in current.values()) / len(current)

    score.by_epoch = []  # type: ignore[attr-defined]
    clock = time.perf_counter()
    report.base = figures()
    report.seconds["validate_base"] = round(time.perf_counter() - clock, 2)
    result = fit(model, pairs, settings.train, score, on_step)
    report.adapted = score.by_epoch[result.best_epoch - 1] if result.best_epoch else report.base  # type: ignore[attr-defined]
    report.epochs_run, report.best_epoch = result.epochs_run, result.best_epoch
    report.seconds["train"] = round(result.seconds, 2)
    report.pairs_per_second = round(result.pairs_seen / max(result.seconds, 1e-9), 2)
    base_value, adapted_value = report.base["held_out"][GUARD_METRIC], report.adapted["held_out"][GUARD_METRIC]
    if adapted_value < base_value and not settings.force:
        raise WorseThanBase.about(
            report,
            f"the adapted model is worse than the base on the held-out patterns (nDCG@10 {adapted_value:.4f} < "
            f"{base_value:.4f}); nothing written to {out}. Try more pairs or epochs, or --force to write it anyway",
            field="out",
        )
    _write(model, out, base_path, settings, report, library_fingerprint(patterns), adapted_value < base_value)
    report.written = True
    return report


def _write(model, out: Path, base_path: Path, settings: AdaptSettings, report: AdaptReport, fingerprint: str, forced: bool) -> None:
    out = out.resolve()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.save(str(tmp))
        manifest = AdaptManifest(
            base_model=MODEL_NAME,
            base_hash=weights_hash(base_path),
            weights_hash=weights_hash(tmp),
            library=str(Path(settings.library).resolve()),
            library_fingerprint=fingerprint,
            pairs=report.pairs,
            held_out=tuple(report.held_out),
            epochs=settings.train.epochs,
            epochs_run=report.epochs_run,
            best_epoch=report.best_epoch,
            seed=settings.train.seed,
            validation={"base": report.base, "adapted": report.adapted},
            device=report.device,
            seconds=report.seconds.get("train", 0.0),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            forced=forced,
            settings={
                "batch_size": settings.train.batch_size,
                "learning_rate": settings.train.learning_rate,
                "max_pairs": settings.max_pairs,
                "train_seq_length": settings.train.max_seq_length,
                "negatives": report.negatives,
                "pairs_per_second": report.pairs_per_second,
            },
        )
        write_adapt_manifest(tmp, manifest)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
