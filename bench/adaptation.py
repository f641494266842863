"""`python -m bench.adaptation`: what `rag adapt` costs and gains on one library; writes `<out>/adaptation.md`
and `.json` (`adaptation-quick.*` with --quick, so a smoke run never replaces the real report).

Steps 1-3 each run in a fresh Python process (spawn), so their wall time, CPU time and peak RSS are their own:
1. `rag adapt` through its Python entry point (rag.adapt.run.adapt), by default with the README's settings
   (--epochs 1 --max-pairs 200 --seed 0): the time from process start to exit (imports and model load included),
   its stages, peak RSS, and the command's own base vs adapted nDCG@10 on its held-out patterns.
2. A cold build with the base model into a fresh folder with its own empty cache, then
3. the same with the adapted model (`rag index --model`): the re-encoding. Each build is timed with its model
   already loaded; cost ratio = 3 / 2, in wall and in CPU seconds.
4. In this process, `rag eval`'s harness on both indexes (the same chunks): dense, lexical (no vectors: a
   control) and hybrid, ranx's nDCG@10, R@10, MRR@10, base vs adapted by paired t-test. These dev figures are
   not cross-validated: the dev queries' relevant patterns were in the adaptation's training library; only the
   queries whose every relevant pattern was held out are, and they are few (reported apart).
The default library is bmn (60 patterns). commons-os is not measured: on 2 cores one encoding of it alone takes
over an hour. --quick: a 10-pattern subset, 8 pairs, batch 4, the guard forced (a smoke run of the costs).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from bench.builds import copy_library, timed_build
from bench.timing import cpu_seconds, in_worker_thread, other_cores

log = logging.getLogger(__name__)

K = 100  # hits per query, `rag eval`'s default
METRICS = ("ndcg@10", "recall@10", "mrr@10")
VARIANT_NAMES = ("hybrid", "dense", "lexical")
NOISY = ("httpx", "faiss", "sentence_transformers", "bm25s", "numba")


@dataclass(frozen=True, slots=True)
class AdaptBenchSettings:
    library: Path = Path("../shared/corpora/bmn")
    dev: Path | None = Path("eval/dev/bmn.jsonl")
    out: Path = Path("eval/bench")
    epochs: int = 1
    max_pairs: int = 200
    seed: int = 0
    batch_size: int = 16
    force: bool = False  # write the model even when the guard refuses it (needed for figures after step 1)
    subset: int | None = None  # files of the library (evenly spaced in sorted order); None: all
    quick: bool = False
    hold_out: float = 0.2  # rag adapt --hold-out
    split_all: bool = False  # rag adapt --split-all
    # Cross-validation (issue 13): train on the training share only, then build, search and judge on the
    # held-out patterns alone (a library of their files), with the dev queries whose every relevant pattern is held out.
    cross_validate: bool = False
    base_cache: Path | None = None  # the base model's embedding cache for the base build (its time is then not a cold build's)

    def quick_version(self) -> AdaptBenchSettings:
        return replace(
            self,
            quick=True,
            subset=min(self.subset or 10, 10),
            max_pairs=min(self.max_pairs, 8),
            batch_size=min(self.batch_size, 4),
            force=True,
        )

    @property
    def name(self) -> str:
        name = "adaptation-cv" if self.cross_validate else "adaptation"
        return f"{name}-quick" if self.quick else (f"{name}-{self.library.name}" if self.cross_validate else name)

    def command(self) -> str:
        flags = [
            f"--library {self.library}",
            f"--dev {self.dev}" if self.dev else "--no-dev",
            f"--out {self.out}",
            f"--epochs {self.epochs}",
            f"--max-pairs {self.max_pairs}",
            f"--seed {self.seed}",
            f"--batch-size {self.batch_size}",
        ]
        flags += [f"--subset {self.subset}"] * bool(self.subset) + ["--force"] * self.force + ["--quick"] * self.quick
        flags += (
            [f"--hold-out {self.hold_out}"] * (self.hold_out != 0.2)
            + ["--split-all"] * self.split_all
            + ["--cross-validate"] * self.cross_validate
        )
        flags += [f"--base-cache {self.base_cache}"] * bool(self.base_cache)
        return "python -m bench.adaptation " + " ".join(flags)

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def machine() -> dict:
    import importlib.metadata as md

    import psutil
    import torch

    from rag.adapt.train import device_name

    cpu = (
        next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
            None,
        )
        if Path("/proc/cpuinfo").exists()
        else None
    )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sentence_transformers": md.version("sentence-transformers"),
        "device": device_name(),
    }


# -- steps in fresh processes -------------------------------------------------------------------
def in_fresh_process(call, *args) -> dict:
    """`call(*args)` (returns a dict) in a new Python process (spawn), plus that process's wall seconds from
    start to exit and the cores other processes kept busy meanwhile (timing.other_cores)."""
    before, started = cpu_seconds(), time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        value = pool.submit(call, *args).result()
    wall = time.perf_counter() - started
    return {**value, "process_seconds": round(wall, 2), "other_cores": other_cores(before, cpu_seconds(), wall)}


def _own_cost() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only: every thread, no children
    return {"cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss": usage.ru_maxrss * 1024}


def _child_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def adapt_step(settings) -> dict:
    """Child: `rag adapt`'s entry point; a refusal by the guard is a result (with its figures), not a failure."""
    _child_logging()
    from rag.adapt.run import WorseThanBase, adapt

    shown = [0.0]

    def on_step(epoch: int, done: int, total: int) -> None:
        if done == total or time.perf_counter() - shown[0] > 30:
            shown[0] = time.perf_counter()
            log.info("adapt, epoch %d: %d of %d pairs", epoch, done, total)

    started, refused = time.perf_counter(), None
    try:
        report = adapt(settings, on_step)
    except WorseThanBase as exc:
        report, refused = exc.report, str(exc)
    return {"call_seconds": round(time.perf_counter() - started, 2), "report": asdict(report), "refused": refused, **_own_cost()}


def build_step(library: Path, index_dir: Path, cache_dir: Path, model: Path | None) -> dict:
    """Child: a cold build (`rag index [--model]`) timed with the model loaded beforehand."""
    _child_logging()
    from rag.embedding.minilm import MiniLMEncoder

    encoder = MiniLMEncoder(model_path=model)
    encoder.encode(["warm up: the model is loaded before the build is timed"])
    return {"build": timed_build(library, index_dir, cache_dir, encoder), "model": encoder.info.name, **_own_cost()}


# -- the run ------------------------------------------------------------------------------------
def measure(s: AdaptBenchSettings, work: Path, base_encoder=None) -> dict:
    from rag.adapt.run import AdaptSettings
    from rag.adapt.train import TrainSettings
    from rag.load.library import iter_markdown_files

    total = sum(1 for _ in iter_markdown_files(s.library))
    library, files = (s.library, total) if not s.subset else copy_library(s.library, work / "library", s.subset)
    model = work / "model"
    result: dict = {
        "date": dt.date.today().isoformat(),
        "command": s.command(),
        "settings": s.to_dict(),
        "library": str(s.library),
        "files": files,
        "library_files": total,
        "machine": machine(),
    }
    log.info("adaptation: rag adapt %s (%s)", library, s.command())
    train = TrainSettings(epochs=s.epochs, batch_size=s.batch_size, seed=s.seed)
    result["adapt"] = in_fresh_process(
        adapt_step,
        AdaptSettings(
            library.resolve(),
            model.resolve(),
            train,
            max_pairs=s.max_pairs,
            force=s.force,
            held_out_share=s.hold_out,
            split_all=s.split_all,
        ),
    )
    if not result["adapt"]["report"]["written"]:
        result["skipped"] = (
            "the guard refused the adapted model (worse than the base on the held-out patterns), so there is nothing to re-encode or "
            "evaluate; give --force to measure it anyway"
        )
        return result
    if s.cross_validate:
        held = result["adapt"]["report"]["held_out"]
        library, copied = held_out_library(library, held, work / "held-out-library")
        result["cross_validation"] = {"held_out_patterns": len(held), "files": copied}
    builds: dict = {}
    for name, path in (("base", None), ("adapted", model.resolve())):
        log.info("adaptation: build with the %s model", name)
        cache = Path(s.base_cache) if name == "base" and s.base_cache else work / name / "cache"
        builds[name] = in_fresh_process(build_step, library.resolve(), work / name / "index", cache, path)
    b, a = builds["base"]["build"], builds["adapted"]["build"]
    builds["ratio"] = round(a["seconds"]["total"] / b["seconds"]["total"], 3)
    builds["ratio_cpu"] = round(a["cpu_seconds"] / b["cpu_seconds"], 3) if b["cpu_seconds"] else None
    result["builds"] = builds
    if s.dev and Path(s.dev).is_file():
        log.info("adaptation: rag eval on both indexes")
        result["dev"] = in_worker_thread(
            lambda: dev_eval(work, model, Path(s.dev), result["adapt"]["report"]["held_out"], base_encoder, every=s.cross_validate)
        )
    else:
        result["dev"] = {"error": f"no dev query file ({s.dev})"}
    return result


def held_out_library(library: Path, held: list[str], dest: Path) -> tuple[Path, int]:
    """A library of the held-out patterns' files only (copied to `dest`); (dest, files)."""
    from rag.load.library import load_library

    wanted = set(held)
    paths = [p.path for p in load_library(library).patterns if p.slug in wanted]
    for rel in paths:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(library) / rel, target)
    return dest, len(paths)


def judged_in_library(dev: Path, slugs, dest: Path, every: bool = False) -> tuple[Path, int, int]:
    """The dev lines with a relevant pattern (grade > 0) in the library (`every`: all of their relevant patterns
    in it), written to `dest`; (dest, kept, lines)."""
    lines = [line for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            relevant = json.loads(line).get("relevant") or {}
        except (ValueError, AttributeError):
            continue  # the harness reports bad lines; here they are left out
        wanted = [slug in slugs for slug, g in relevant.items() if int(g) > 0]
        if wanted and (all(wanted) if every else any(wanted)):
            kept.append(line)
    dest.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return dest, len(kept), len(lines)


def dev_eval(work: Path, model: Path, dev: Path, held_out: list[str], base_encoder=None, every: bool = False) -> dict:
    """`rag eval --retriever all` on the base and the adapted index, side by side (one ranx comparison)."""
    from rag.embedding.minilm import MiniLMEncoder
    from rag.evaluation.harness import evaluate, load_input, run_queries, variant
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    encoders = {"base": base_encoder or MiniLMEncoder(), "adapted": MiniLMEncoder(model_path=model.resolve())}
    retrievers = {
        name: Retriever(SearchIndex.open(work / name / "index", expected_model=enc.info.record), enc) for name, enc in encoders.items()
    }
    path, kept, lines = judged_in_library(dev, set(retrievers["base"].index.slug_row), work / "dev.jsonl", every)
    data = load_input(path, retrievers["base"], K)
    if not data.scored:
        return {"error": f"no query of {dev} has a relevant pattern in the library ({lines} lines)"}
    for enc in encoders.values():
        enc.encode_query(data.queries[0].text)  # load both models before the searches
    runs = [run_queries(variant(retrievers[m], v), data.queries, K, f"{m}:{v}") for v in VARIANT_NAMES for m in encoders]
    evaluation = evaluate(runs, {q: data.judgments[q] for q in data.scored})
    held = set(held_out)
    cross = [q for q in data.scored if all(s in held for s, g in data.judgments[q].items() if g > 0)]
    out: dict = {
        "file": str(dev),
        "lines": lines,
        "queries": len(data.scored),
        "left_out": lines - kept,
        "k": K,
        "variants": {},
        "cross_validated": every,
    }
    for v in VARIANT_NAMES:
        row: dict = {}
        for m in METRICS:
            test = next(c for c in evaluation.comparisons if {c.a, c.b} == {f"base:{v}", f"adapted:{v}"} and c.metric == m)
            base, adapted = evaluation.means[f"base:{v}"][m], evaluation.means[f"adapted:{v}"][m]
            row[m] = {
                "base": round(base, 4),
                "adapted": round(adapted, 4),
                "diff": round(adapted - base, 4),
                "p_value": None if test.p_value is None else round(test.p_value, 4),
            }
        if cross:
            row["held_out_queries_ndcg@10"] = {
                m: round(sum(evaluation.per_query[f"{m}:{v}"][q]["ndcg@10"] for q in cross) / len(cross), 4) for m in encoders
            }
        out["variants"][v] = row
    out["held_out_queries"] = len(cross)
    return out


def write(result: dict, out: Path, name: str) -> tuple[Path, Path]:
    from bench.adaptation_report import markdown

    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path


def run(s: AdaptBenchSettings, workdir: Path | None = None, base_encoder=None) -> dict:
    """Measure and write the report; returns the results with `report` (the Markdown path) and `json`."""
    started = time.perf_counter()
    work = workdir or Path(tempfile.mkdtemp(prefix="rag-bench-adapt-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = measure(s, work, base_encoder)
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    json_path, md_path = write(result, s.out, s.name)
    return {**result, "report": str(md_path), "json": str(json_path)}


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    library: Annotated[Path, typer.Option("--library", help="The library to adapt to and re-encode.")] = Path("../shared/corpora/bmn"),
    dev: Annotated[Path | None, typer.Option("--dev", help="Judged dev queries (rag eval JSONL) for base vs adapted.")] = Path(
        "eval/dev/bmn.jsonl"
    ),
    no_dev: Annotated[bool, typer.Option("--no-dev", help="No dev evaluation.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for adaptation.md and adaptation.json.")] = Path("eval/bench"),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="rag adapt --epochs.")] = 1,
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=1, help="rag adapt --max-pairs.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="rag adapt --seed.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="rag adapt --batch-size.")] = 16,
    force: Annotated[bool, typer.Option("--force", help="rag adapt --force: measure the model even when the guard refuses it.")] = False,
    subset: Annotated[
        int | None, typer.Option("--subset", min=2, help="Only this many files of the library (evenly spaced in sorted order).")
    ] = None,
    hold_out: Annotated[float, typer.Option("--hold-out", min=0.0, max=0.9, help="rag adapt --hold-out.")] = 0.2,
    split_all: Annotated[bool, typer.Option("--split-all", help="rag adapt --split-all.")] = False,
    cross_validate: Annotated[
        bool,
        typer.Option(
            "--cross-validate",
            help="Build, search and judge on the held-out patterns only (queries whose every relevant pattern is held out).",
        ),
    ] = False,
    base_cache: Annotated[
        Path | None, typer.Option("--base-cache", help="Embedding cache for the base build (e.g. index/cache after a full build).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke run: 10-file subset, 8 pairs, batch 4, --force; writes adaptation-quick.*.")
    ] = False,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Keep the model and indexes here (default: a temporary folder, removed).")
    ] = None,
) -> None:
    """Adapt, re-encode and evaluate base vs adapted on one library; write the report."""
    _child_logging()
    if not library.is_dir():
        typer.echo(f"error: library folder not found: {library}", err=True)
        raise typer.Exit(2)
    s = AdaptBenchSettings(
        library=library,
        dev=None if no_dev else dev,
        out=out,
        epochs=epochs,
        max_pairs=max_pairs,
        seed=seed,
        batch_size=batch_size,
        force=force,
        subset=subset,
        hold_out=hold_out,
        split_all=split_all,
        cross_validate=cross_validate,
        base_cache=base_cache,
    )
    result = run(s.quick_version() if quick else s, workdir)
    typer.echo(f"wrote {result['report']} and {result['json']}")
    from bench.adaptation_report import summary

    typer.echo(summary(result))


if __name__ == "__main__":
    app()
