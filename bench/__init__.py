"""The benchmark of the benchmark issue: build, rebuild, query latency, txtai, HTTP, scale, memory.

`python -m bench --out eval/bench` (or `make bench`) writes `<out>/<date>.json` and `.md`.
The names below are imported on first use, so `python -m bench --help` stays instant.
"""

__all__ = ["SECTIONS", "BenchSettings", "run_bench"]


def __getattr__(name: str):
    if name in __all__:
        from bench import run

        return getattr(run, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
