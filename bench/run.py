"""One benchmark run: every figure of the benchmark issue, measured in this process (and its servers and child processes).

Order: the cold subset, slice by slice (floor, our build, txtai's build); the warm full build (the index
every later section uses); a one-file rebuild on copies; in-process query latency; txtai beside ours;
HTTP load and serving memory on one `rag serve` subprocess; `rag adapt` on the small library (re-encoding it and
base vs adapted dev figures; bench.adaptation writes its own report); the synthetic scale test last (it needs
the most memory). A section that fails is recorded with its error and the run goes on. Every section
records how many cores other processes kept busy meanwhile (`other_cores`): a shared machine slows
the figures, and the report says where.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench import adaptation, builds, latency, report, serving, txtai_baseline
from bench.scale import ScaleSettings
from bench.synthetic import SyntheticSpec, exact_top, similarity_profile
from bench.timing import cpu_seconds, cycled, dev_queries, in_worker_thread, other_cores, percentiles, time_ms
from rag.embedding.choose import query_encoder
from rag.embedding.minilm import MiniLMEncoder, default_model_path
from rag.index.search_index import SearchIndex
from rag.index.store import current_build
from rag.search.retriever import Retriever

log = logging.getLogger(__name__)

SECTIONS: tuple[str, ...] = ("cold", "rebuild", "latency", "txtai", "http", "memory", "startup", "adapt", "scale")


@dataclass(frozen=True, slots=True)
class BenchSettings:
    out: Path = Path("eval/bench")
    corpora: Path = Path("../shared/corpora")
    library: str = "commons-os"  # the large library under corpora/
    small_library: str = "bmn"  # compared with txtai in full
    patterns_dir: Path = Path("patterns")
    dev_dir: Path = Path("eval/dev")
    cache_dir: Path = Path("index/cache")
    subset_files: int = 150
    cold_slices: int = 5
    queries: int = 300
    http_seconds: float = 20.0
    http_levels: tuple[int, ...] = (1, 8, 32, 64)
    scale: ScaleSettings = field(default_factory=ScaleSettings)
    skip: frozenset[str] = frozenset()
    quick: bool = False
    workdir: Path | None = None  # default: a temporary directory, removed at the end

    def quick_version(self) -> BenchSettings:
        """A smoke run of minutes: a 10-file subset stands in for the full library, short timings."""
        spec = replace(self.scale.spec, patterns=5_000, topics=100)
        return replace(
            self,
            quick=True,
            subset_files=min(self.subset_files, 10),
            cold_slices=2,
            queries=min(self.queries, 30),
            http_seconds=min(self.http_seconds, 3.0),
            scale=replace(self.scale, spec=spec, nlist=64, tune_queries=30, eval_queries=50),
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["skip"] = sorted(self.skip)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def machine() -> dict:
    import importlib.metadata as md

    import psutil
    import torch

    cpu = (
        next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    versions = {}
    for package in ("faiss-cpu", "txtai", "sentence-transformers", "bm25s"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": versions["faiss-cpu"],
        "txtai": versions["txtai"],
        "sentence_transformers": versions["sentence-transformers"],
        "bm25s": versions["bm25s"],
    }


class Run:
    """The state shared by the sections of one run."""

    def __init__(self, settings: BenchSettings, workdir: Path):
        self.settings = settings
        self.work = workdir
        self.embedder = MiniLMEncoder()  # builds encode with torch
        self.query_embedder = query_encoder()  # what `rag serve` and `rag search` encode queries with (numpy on a CPU)
        self.results: dict = {"date": dt.date.today().isoformat(), "settings": settings.to_dict()}
        self.source = settings.corpora / settings.library
        self.full_library: Path = self.source
        self.full_index = workdir / "full" / "index"
        self.queries: list[str] = []
        self._index: SearchIndex | None = None

    @property
    def warm_cache(self) -> Path:
        """The persistent cache for the full library; in a quick run, the cold subset's own cache."""
        return self.work / "subset" / "cache" if self.settings.quick else self.settings.cache_dir

    def index(self) -> SearchIndex:
        """The full library's index, opened once."""
        if self._index is None:
            self._index = SearchIndex.open(self.full_index)
        return self._index

    def section(self, name: str, call: Callable[[], dict], label: str | None = None) -> None:
        if name in self.settings.skip:
            log.info("skipping %s", name)
            return
        log.info("== %s", label or name)
        started, cpu = time.perf_counter(), cpu_seconds()
        value = _guarded(call)  # one failed section must not lose the others' figures
        seconds = time.perf_counter() - started
        value["section_seconds"] = round(seconds, 1)
        value["other_cores"] = other_cores(cpu, cpu_seconds(), seconds)
        self.results[name] = value
        self.checkpoint()

    @property
    def partial_path(self) -> Path:
        return self.settings.out / f".{self.results['date']}.partial.json"

    def checkpoint(self) -> None:
        """The results so far, so a crash late in a long run keeps the figures measured before it."""
        self.settings.out.mkdir(parents=True, exist_ok=True)
        self.partial_path.write_text(json.dumps(self.results, indent=1, default=str), encoding="utf-8")

    # -- sections ---------------------------------------------------------------------------
    def build(self) -> dict:
        s = self.settings
        out: dict = {}
        subset, copied = builds.copy_library(self.source, self.work / "subset" / "library", s.subset_files)
        if s.quick:
            self.full_library = subset
        if "cold" not in s.skip:
            other = None if "txtai" in s.skip else _txtai_build_seconds
            out["cold_subset"] = {"files": copied, **builds.cold_build(subset, self.work / "subset", self.embedder, s.cold_slices, other)}
        if s.quick:  # the quick run's cache starts empty: fill it first, so the timed build is warm
            builds.timed_build(self.full_library, self.work / "fill-cache", self.warm_cache, self.embedder)
        warm = builds.timed_build(self.full_library, self.full_index, self.warm_cache, self.embedder)
        out["warm_full"] = {"library": str(self.full_library), "cache_dir": str(self.warm_cache), **warm}
        distinct = list(dict.fromkeys(c.text for c in self.index().chunks))
        if "cold_subset" in out:
            out["extrapolated_cold_full"] = builds.extrapolate_cold(out["cold_subset"], warm, distinct)
        return out

    def rebuild(self) -> dict:
        result = builds.one_file_rebuild(self.full_library, self.full_index, self.warm_cache, self.work / "rebuild", self.embedder)
        full = self.results.get("build", {}).get("extrapolated_cold_full", {}).get("seconds")
        warm = self.results.get("build", {}).get("warm_full", {}).get("seconds", {}).get("total")
        result["share_of_full_cold_build"] = round(result["seconds"] / full, 5) if full else None
        result["share_of_warm_build"] = round(result["seconds"] / warm, 4) if warm else None
        shutil.rmtree(self.work / "rebuild", ignore_errors=True)
        return result

    def latency(self) -> dict:
        retriever = Retriever(self.index(), self.query_embedder)
        result = in_worker_thread(lambda: latency.measure(retriever, self.queries, other_floor=self.embedder))
        result["query_encoder"] = getattr(self.query_embedder, "runtime", "?")
        sample = self.queries[:50]
        result["floor_ms_main_thread"] = percentiles([time_ms(lambda: self.query_embedder.encode_query(q)) for q in sample])
        result["index"] = f"{self.full_library.name} ({len(retriever.index.patterns)} patterns, {len(retriever.index.chunks)} chunks)"
        return result

    def txtai(self) -> dict:
        import importlib.metadata as md

        s = self.settings
        libraries: dict = {}
        small = [("patterns", s.patterns_dir, s.dev_dir / "patterns.jsonl")]
        if not s.quick:
            small.append((s.small_library, s.corpora / s.small_library, s.dev_dir / f"{s.small_library}.jsonl"))
        for name, library, dev in small:
            libraries[name] = _guarded(lambda: self._txtai_cold(library, self.work / "txtai" / name, dev if dev.is_file() else None))
        cold = self.results.get("build", {}).get("cold_subset")
        if cold and "other_seconds" in cold:  # txtai built each slice of the cold subset right after ours
            stages, theirs = cold["build"]["seconds"], cold["other_seconds"]
            ours = sum(stages.get(k, 0.0) for k in ("encode", "index", "write"))
            libraries[f"{s.library} subset ({cold['files']} files, {len(cold['slices'])} slices)"] = {
                "chunks": cold["build"]["chunks"],
                "build_seconds": {"ours": round(ours, 3), "ours_with_load_and_chunk": stages["total"], "txtai": theirs},
                "ratio_build_ours_to_txtai": round(ours / theirs, 3) if theirs else None,
                "warm": False,
            }
        warm = self.results.get("build", {}).get("warm_full")
        if warm and not s.quick:
            dev = s.dev_dir / f"{s.library}.jsonl"
            libraries[s.library] = _guarded(
                lambda: self._txtai_against(self.full_index, warm["seconds"], dev if dev.is_file() else None, warm=True)
            )
        return {
            "version": md.version("txtai"),
            "config": {k: v for k, v in txtai_baseline.config().items()},
            "candidates": txtai_baseline.CANDIDATES,
            "note": "txtai is given our chunk texts, so builds compare like for like from chunks on (our encode + index + write stages); "
            "ours with loading and chunking the Markdown is shown too. "
            "Cold rows: both encode, with empty caches; the warm row gives txtai our cached vectors through its `external` method, as our "
            "warm build reuses them. "
            f"Chunk hits -> patterns by best chunk, {txtai_baseline.CANDIDATES} chunks per query; nDCG@10 by the same ranx harness as "
            f"`rag eval`.",
            "libraries": libraries,
        }

    def _txtai_cold(self, library: Path, work: Path, dev: Path | None) -> dict:
        ours = builds.timed_build(library, work / "index", work / "cache", self.embedder)
        return self._txtai_against(work / "index", ours["seconds"], dev)

    def _txtai_against(self, index_dir: Path, our_stages: dict, dev: Path | None, warm: bool = False) -> dict:
        retriever = Retriever(self.index() if index_dir == self.full_index else SearchIndex.open(index_dir), self.query_embedder)
        texts = [c.text for c in retriever.index.chunks]
        transform = None
        if warm:
            from rag.embedding.cache import EmbeddingCache

            info = self.embedder.info
            transform = txtai_baseline.cached_transform(EmbeddingCache(self.warm_cache, info.key, info.dimension), self.embedder)
        embeddings, seconds = txtai_baseline.build(texts, transform)
        try:
            result = in_worker_thread(lambda: txtai_baseline.compare(retriever, embeddings, seconds, our_stages, self.queries, dev))
            result["txtai_ann"] = (embeddings.config.get("build") or {}).get("settings")  # e.g. {"components": "IVF..."}
        finally:
            embeddings.close()
        result["warm"] = warm
        return result

    def serve(self) -> None:
        """HTTP levels and serving memory on one `rag serve` subprocess of the full index."""
        s = self.settings
        measure_http, measure_memory = "http" not in s.skip, "memory" not in s.skip
        if not (measure_http or measure_memory):
            return
        try:
            with serving.Server(self.full_index, self.work / "serve.log") as server:
                from bench.loadgen import run_load

                run_load(server.base_url, self.queries[:20], clients=1, seconds=5.0)  # warm: model, tokenizer, pages
                idle = server.rss()
                with serving.RssSampler(server) as sampler:
                    if measure_http:
                        started, cpu = time.perf_counter(), cpu_seconds()
                        levels = serving.http_levels(server, self.queries, s.http_levels, s.http_seconds)
                        seconds = time.perf_counter() - started
                        self.results["http"] = {
                            "startup_seconds": server.startup_seconds,
                            "ready_seconds": server.ready_seconds,
                            "seconds_per_level": s.http_seconds,
                            "levels": levels,
                            "section_seconds": round(seconds, 1),
                            "other_cores": other_cores(cpu, cpu_seconds(), seconds),
                        }
                        self.checkpoint()
                peak = max(sampler.peak, idle)
            if measure_http:  # the same levels on a server with batching off (RAG_BATCH_MAX=1), side by side
                with serving.Server(self.full_index, self.work / "serve-unbatched.log", env={"RAG_BATCH_MAX": "1"}) as plain:
                    run_load(plain.base_url, self.queries[:20], clients=1, seconds=5.0)
                    self.results["http"]["unbatched_levels"] = serving.http_levels(plain, self.queries, s.http_levels, s.http_seconds)
                self.checkpoint()
        except Exception as exc:  # recorded in the report like any failed section
            log.exception("serving failed")
            for name, wanted in (("http", measure_http), ("memory", measure_memory)):
                if wanted and name not in self.results:
                    self.results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        if measure_memory:
            self.section("memory", lambda: self._memory(idle, peak))

    def startup(self) -> dict:
        """Time to first answer of `rag show`, `rag serve` and `rag mcp`, each a fresh process on the full index."""
        index = self.index()
        return serving.first_answers(self.full_index, index.patterns[0].slug, self.queries[0], self.work)

    def _memory(self, idle: int, peak: int) -> dict:
        from rag.index.search_index import SKIPPED

        build = current_build(self.full_index)
        index_bytes, model_bytes = serving.tree_bytes(build), serving.tree_bytes(default_model_path())
        skipped = (build / SKIPPED).stat().st_size if (build / SKIPPED).is_file() else 0  # kept for the next build, never read by serving
        return {
            "skipped_chunks_bytes": skipped,
            "ratio_without_skipped": round(peak / (index_bytes - skipped + model_bytes), 3),
            "index": str(self.full_library),
            "rss_idle": idle,
            "rss_peak": peak,
            "index_bytes": index_bytes,
            "model_bytes": model_bytes,
            "ratio": round(peak / (index_bytes + model_bytes), 3),
            "ratio_idle": round(idle / (index_bytes + model_bytes), 3),
            "model_only_rss": serving.model_only_rss(),
            "model_only_rss_torch": serving.model_only_rss("torch"),
        }

    def adapt(self) -> dict:
        """`rag adapt` on the small library, its re-encoding and base vs adapted dev figures (bench.adaptation,
        which writes its own adaptation.md / .json; adaptation-quick.* in a quick run)."""
        s = self.settings
        dev = s.dev_dir / f"{s.small_library}.jsonl"
        spec = adaptation.AdaptBenchSettings(library=s.corpora / s.small_library, dev=dev if dev.is_file() else None, out=s.out)
        return adaptation.run(spec.quick_version() if s.quick else spec, self.work / "adapt", self.embedder)

    def scale(self) -> dict:
        """On a worker thread, as the service searches: the real-data check, then the synthetic library."""
        from bench import scale

        def measure() -> dict:
            real = self._real_vectors()
            check = scale.real_check(*real, self.settings.scale) if real else None
            result = scale.measure(self.settings.scale, self.work / "scale", check)
            if real:
                result["real_similarity_profile"] = similarity_profile(exact_top(real[0], real[1], 100)[0])
                result["real_library"] = self.settings.library + (" subset" if self.settings.quick else "")
            return result

        return in_worker_thread(measure)

    def _real_vectors(self):
        """(the full library's chunk vectors, its distinct dev queries encoded), or None without an index."""
        if not (self.full_index / "current").exists():
            return None
        index = self.index().vectors.index
        vectors = index.reconstruct_n(0, index.ntotal)
        return vectors, self.embedder.encode(list(dict.fromkeys(self.queries)))


def _txtai_build_seconds(texts: list[str]) -> float:
    embeddings, seconds = txtai_baseline.build(texts)
    embeddings.close()
    return seconds


def _guarded(call: Callable[[], dict]) -> dict:
    """`call()`, or its error as `{"error": ...}` (logged with the traceback) so the rest of a section goes on."""
    try:
        return call()
    except Exception as exc:  # reported in the results; the other measurements of the section still count
        log.exception("measurement failed")
        return {"error": f"{type(exc).__name__}: {exc}"}


def run_bench(settings: BenchSettings) -> tuple[dict, Path, Path]:
    """Run every section not skipped and write the report; returns (results, json path, md path)."""
    started = time.perf_counter()
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="rag-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(settings, workdir)
    try:
        run.results["machine"] = machine()
        _ = run.embedder.info  # load the model before anything is timed
        run.queries = cycled(dev_queries(sorted(settings.dev_dir.glob("*.jsonl"))), settings.queries)
        run.section("build", run.build, "build: cold subset + floor, warm full library")
        if (run.full_index / "current").exists():
            run.section("rebuild", run.rebuild, "rebuild after one file changes")
            run.section("latency", run.latency, "in-process query latency")
            run.section("txtai", run.txtai, "txtai beside ours")
            run.serve()
            if "startup" not in settings.skip:
                run.section("startup", run.startup, "time to first answer: rag show, rag serve, rag mcp")
        run.section("adapt", run.adapt, f"library adaptation on {settings.small_library}: rag adapt, re-encoding, base vs adapted")
        run.section("scale", run.scale, "synthetic scale test")
    finally:
        if settings.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    run.results["seconds"] = round(time.perf_counter() - started, 1)
    run.checkpoint()
    run.results["goals"] = [g.to_dict() for g in report.goals(run.results)]
    json_path, md_path = report.write(run.results, settings.out)
    run.partial_path.unlink(missing_ok=True)
    return run.results, json_path, md_path


__all__ = ["BenchSettings", "SECTIONS", "SyntheticSpec", "run_bench"]
