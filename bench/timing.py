"""Latency summaries: percentiles over samples in milliseconds, and the query list every timing uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, p99 and mean of `samples_ms`, rounded to microseconds.

    Percentiles interpolate linearly between the two nearest samples (numpy's default, as
    `statistics.quantiles(method="inclusive")`): p50 of [1, 2, 3, 4] is 2.5.
    """
    if not len(samples_ms):
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None}
    values = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(len(values)),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(values.mean()), 3),
    }


def time_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def cycled(items: Sequence[T], n: int) -> list[T]:
    """The first `n` items of `items` repeated in order (`n` may exceed `len(items)`)."""
    if not items:
        raise ValueError("no items to cycle through")
    return list(islice(cycle(items), n))


def dev_queries(paths: Sequence[Path]) -> list[str]:
    """Query texts of the dev sets, in file order, files in the given order (invalid lines skipped)."""
    from rag.evaluation.harness import parse_queries

    texts: list[str] = []
    for path in paths:
        queries, _, _ = parse_queries(path)
        texts.extend(q.text for q in queries if q.text.strip())
    return texts


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and its children)."""
    import psutil

    t = psutil.cpu_times()
    busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
    me = psutil.Process()
    c = me.cpu_times()
    own = c.user + c.system + c.children_user + c.children_system
    for child in me.children(recursive=True):
        try:
            cc = child.cpu_times()
            own += cc.user + cc.system
        except psutil.Error:  # exited between listing and reading: its time is in children_* once reaped
            pass
    return busy, own


def other_cores(before: tuple[float, float], after: tuple[float, float], seconds: float) -> float:
    """Average number of cores that processes other than this bench kept busy between two `cpu_seconds()`."""
    if seconds <= 0:
        return 0.0
    return round(max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / seconds, 2)


def in_worker_thread(call: Callable[[], T]) -> T:
    """`call()` run on a fresh thread, as the HTTP service runs a search (FastAPI runs sync routes in
    worker threads). Measured on this machine: while another process keeps a core busy, torch's
    OpenMP team makes one query's encoding ~30x slower on the main thread than on a worker thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench") as pool:
        return pool.submit(call).result()


def clocked(call: Callable[[], T]) -> tuple[T, dict[str, float]]:
    """`call()` and its cost: wall seconds, CPU seconds of this process (all threads), and the cores
    other processes kept busy meanwhile. CPU seconds hardly change when other work shares the
    machine, wall seconds do; a ratio of CPU seconds is the cross-check of a ratio of wall seconds."""
    import resource

    def own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    before, cpu = cpu_seconds(), own_cpu()
    started = time.perf_counter()
    value = call()
    wall = time.perf_counter() - started
    return value, {
        "seconds": round(wall, 3),
        "cpu_seconds": round(own_cpu() - cpu, 3),
        "other_cores": other_cores(before, cpu_seconds(), wall),
    }


def interleaved(variants: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Milliseconds of each variant over `reps` rounds; every round runs each variant once, the order
    rotating by one per round, so drift of a shared machine touches every variant alike."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            samples[name].append(time_ms(variants[name]))
    return samples


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float | None:
    """Median of the per-round ratios numerator[i] / denominator[i] (rounds of `interleaved`)."""
    ratios = [a / b for a, b in zip(numerator, denominator) if b > 0]
    return round(float(np.median(ratios)), 3) if ratios else None
