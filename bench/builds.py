"""Build figures: a cold build against the pure-encoding floor, a warm full build, a one-file rebuild.

The floor of a build is `MiniLMEncoder.encode` of exactly the texts the build encodes (its distinct chunk
texts), timed alone in the same process with the model already loaded. Encoding a whole large library
takes most of an hour on two cores, so the cold build runs on a deterministic subset (N files evenly
spaced in sorted order, built in slices each paired with its own floor) and the full library is built warm, from the persistent
embedding cache; the
full cold build is then extrapolated from the subset's measured encoding time per word-piece token
(encoding cost follows tokens, not chunks: chunk lengths vary across the library), labelled so.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from bench.timing import clocked
from rag.chunking import chunk_library, model_token_counter
from rag.config import BuildSettings, ChunkerSettings
from rag.embedding.minilm import MiniLMEncoder
from rag.index.build import build_index
from rag.index.store import current_build
from rag.load.library import iter_markdown_files, load_library

log = logging.getLogger(__name__)

EDIT = "\n\nA sentence added by the rebuild benchmark, so that exactly this section changes.\n"


def copy_library(source: Path, dest: Path, files: int | None = None) -> tuple[Path, int]:
    """Copy `files` Markdown files of `source`, evenly spaced in sorted order (all when None), to `dest`;
    returns (dest, copied)."""
    paths = list(iter_markdown_files(source))
    if files is not None and files < len(paths):
        paths = [paths[i * len(paths) // files] for i in range(files)]
    dest.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest, len(paths)


def distinct_chunk_texts(library: Path) -> list[str]:
    """The distinct chunk texts a cold build with the default chunker encodes, in first-seen order."""
    settings = ChunkerSettings()
    return list(dict.fromkeys(c.text for c in chunk_library(load_library(library).patterns, settings=settings) if settings.encodes(c)))


def warm_up(embedder: MiniLMEncoder, texts: list[str]) -> None:
    """Load the model and run a few batches, so neither side of a comparison pays for first calls."""
    embedder.encode(texts[:64] or ["warm up"])


def tokens(texts: list[str]) -> int:
    """Word pieces in `texts` by the model's tokenizer (special tokens excluded): the encoding work."""
    count = model_token_counter()
    return sum(sum(count(texts[i : i + 1000])) for i in range(0, len(texts), 1000))


def encoding_floor(embedder: MiniLMEncoder, texts: list[str]) -> dict:
    _, cost = clocked(lambda: embedder.encode(texts))
    return {
        "texts": len(texts),
        "tokens": tokens(texts),
        **cost,
        "texts_per_second": round(len(texts) / cost["seconds"], 2) if cost["seconds"] else None,
    }


def timed_build(library: Path, index_dir: Path, cache_dir: Path, embedder: MiniLMEncoder, rebuild: bool = False) -> dict:
    """`build_index` and its summary; `seconds.total` is the wall time of the whole call (the model is loaded beforehand)."""
    built, cost = clocked(lambda: build_index(BuildSettings(library, index_dir, cache_dir=cache_dir, rebuild=rebuild), embedder))
    summary = built.to_dict()
    summary["seconds"] = {**summary["seconds"], "total": cost["seconds"]}
    summary["cpu_seconds"], summary["other_cores"] = cost["cpu_seconds"], cost["other_cores"]
    summary["chunks_per_second"] = round(summary["chunks"] / cost["seconds"], 2) if cost["seconds"] else None
    return summary


def cold_build(
    library: Path, workdir: Path, embedder: MiniLMEncoder, slices: int = 5, other: Callable[[list[str]], float] | None = None
) -> dict:
    """Cold builds (empty cache, no previous index) of `library` in `slices` parts, each right after
    the floor of its own texts, and, given `other(chunk_texts) -> seconds`, another system's build.

    Pairing floor and build slice by slice, a few tens of seconds apart, makes whatever else runs on
    the machine weigh on both sides of the ratio alike; one floor and one build several minutes
    apart do not (measured: the same floor took 115 s and 281 s as other work came and went).
    """
    files = list(iter_markdown_files(library))
    runs = []
    for n in range(slices):
        part = files[n * len(files) // slices : (n + 1) * len(files) // slices]
        if not part:
            continue
        lib = workdir / f"slice-{n + 1}" / "library"
        for path in part:
            target = lib / path.relative_to(library)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        texts = distinct_chunk_texts(lib)
        warm_up(embedder, texts)
        floor = encoding_floor(embedder, texts)
        build = timed_build(lib, lib.parent / "index", lib.parent / "cache", embedder)
        if build["chunks_encoded"] != len(texts):
            log.warning("slice %d: the build encoded %d texts, the floor %d", n + 1, build["chunks_encoded"], len(texts))
        run = {"files": len(part), "floor": floor, "build": build}
        if other is not None:
            run["other_seconds"] = round(other(_all_chunk_texts(current_build(lib.parent / "index"))), 3)
        runs.append(run)
    floor = {key: sum(r["floor"][key] for r in runs) for key in ("texts", "tokens", "seconds", "cpu_seconds")}
    floor["texts_per_second"] = round(floor["texts"] / floor["seconds"], 2)
    stages: dict[str, float] = {}
    for r in runs:
        for stage, seconds in r["build"]["seconds"].items():
            stages[stage] = round(stages.get(stage, 0.0) + seconds, 3)
    build = {key: sum(r["build"][key] for r in runs) for key in ("files", "patterns", "chunks", "chunks_encoded", "problems")}
    build["seconds"] = stages
    build["cpu_seconds"] = round(sum(r["build"]["cpu_seconds"] for r in runs), 3)
    build["other_cores"] = round(sum(r["build"]["other_cores"] * r["build"]["seconds"]["total"] for r in runs) / stages["total"], 2)
    build["chunks_per_second"] = round(build["chunks"] / stages["total"], 2)
    encode_s = stages.get("encode", 0.0)
    out = {
        "library": str(library),
        "slices": [
            {
                "files": r["files"],
                "texts": r["floor"]["texts"],
                "floor_seconds": r["floor"]["seconds"],
                "build_seconds": r["build"]["seconds"]["total"],
                "floor_other_cores": r["floor"]["other_cores"],
                "build_other_cores": r["build"]["other_cores"],
                **({"other_seconds": r["other_seconds"]} if "other_seconds" in r else {}),
            }
            for r in runs
        ],
        "build": build,
        "floor": floor,
        "encode_texts_per_second": round(build["chunks_encoded"] / encode_s, 2) if encode_s else None,
        "ratio_build_to_floor": round(stages["total"] / floor["seconds"], 3),
        "ratio_encode_stage_to_floor": round(encode_s / floor["seconds"], 3),
        "ratio_build_to_floor_cpu": round(build["cpu_seconds"] / floor["cpu_seconds"], 3) if floor["cpu_seconds"] else None,
    }
    if other is not None:
        out["other_seconds"] = round(sum(r["other_seconds"] for r in runs), 3)
    return out


def _all_chunk_texts(build: Path) -> list[str]:
    with open(build / "chunks.jsonl", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def extrapolate_cold(cold: dict, warm: dict, full_texts: list[str]) -> dict:
    """The full library's cold build: its measured non-encoding stages (the warm build) plus encoding
    all its distinct texts at the cold subset's measured seconds per token. An extrapolation."""
    full_tokens, subset_tokens = tokens(full_texts), cold["floor"]["tokens"]
    scale = full_tokens / subset_tokens if subset_tokens else 0.0
    other = sum(v for k, v in warm["seconds"].items() if k not in ("encode", "total"))
    encode = cold["build"]["seconds"].get("encode", 0.0) * scale
    floor = cold["floor"]["seconds"] * scale
    total = other + encode
    by_chunks = len(full_texts) / cold["encode_texts_per_second"] if cold["encode_texts_per_second"] else None
    return {
        "extrapolated": True,
        "method": "the warm full build's load/chunk/index/write seconds + the cold subset's encode seconds x (full tokens / subset tokens)",
        "distinct_texts": len(full_texts),
        "tokens": full_tokens,
        "subset_tokens": subset_tokens,
        "seconds": round(total, 1),
        "encode_seconds": round(encode, 1),
        "floor_seconds": round(floor, 1),
        "ratio_build_to_floor": round(total / floor, 3) if floor else None,
        "chunks_per_second": round(warm["chunks"] / total, 2) if total else None,
        "encode_seconds_by_chunk_rate": round(by_chunks, 1) if by_chunks else None,
    }


def one_file_rebuild(library: Path, index_dir: Path, cache_dir: Path, workdir: Path, embedder: MiniLMEncoder) -> dict:
    """Copy library, index and cache; add a sentence to one file's last section; rebuild incrementally.

    Working on copies keeps the real cache free of the edited text, so every run re-encodes it.
    """
    lib, _ = copy_library(library, workdir / "library")
    shutil.copytree(index_dir, workdir / "index", symlinks=True, ignore=shutil.ignore_patterns("cache", ".lock"))
    shutil.copytree(cache_dir, workdir / "cache")
    files = list(iter_markdown_files(lib))
    target = files[len(files) // 2]
    before = current_build(workdir / "index")
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(EDIT)
    summary = timed_build(lib, workdir / "index", workdir / "cache", embedder)
    after = current_build(workdir / "index")
    rel = target.relative_to(lib).as_posix()
    old, new = _chunk_texts(before, rel), _chunk_texts(after, rel)
    return {
        "file": rel,
        "file_chunks": len(new),
        "changed_chunks": len(set(new) - set(old)),
        "summary": summary,
        "seconds": summary["seconds"]["total"],
        "chunks_encoded": summary["chunks_encoded"],
        "patterns_rechunked": summary["patterns_rechunked"],
    }


def _chunk_texts(build: Path, rel_path: str) -> list[str]:
    slugs = set()
    with open(build / "patterns.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["path"] == rel_path:
                slugs.add(row["slug"])
    texts = []
    with open(build / "chunks.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["slug"] in slugs:
                texts.append(row["text"])
    return texts
