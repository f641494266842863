"""`python -m bench.memory`: serving RSS under repeated bursts of concurrent clients, with glibc's default malloc arenas
and with MALLOC_ARENA_MAX=2 (issue 26: RSS crept from 313 to 351 MB over 64-client bursts); writes memory-creep.md/.json.

Each setting gets a fresh `rag serve` (the bench's Server), then `--bursts` bursts of `--clients` closed-loop clients
for `--seconds` each, with a second's rest between them; the RSS is read after every burst. The two settings run one
after the other on the same index and queries.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.loadgen import run_load
from bench.serving import Server
from bench.timing import dev_queries


def bursts(index_dir: Path, queries: list[str], env: dict[str, str], count: int, clients: int, seconds: float, log: Path) -> dict:
    with Server(index_dir, log, env=env) as server:
        start = server.rss()
        after, errors = [], 0
        for _ in range(count):
            load = run_load(server.base_url, queries, clients=clients, seconds=seconds)
            errors += load["errors"]
            time.sleep(1.0)
            after.append(server.rss())
    mb = 1 / 2**20
    return {
        "start_mb": round(start * mb, 1),
        "after_burst_mb": [round(r * mb, 1) for r in after],
        "errors": errors,
        "creep_mb": round((after[-1] - after[0]) * mb, 1),
        "peak_mb": round(max(after) * mb, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path, required=True)
    parser.add_argument("--queries", type=Path, default=Path("eval/dev/bmn.jsonl"))
    parser.add_argument("--bursts", type=int, default=8)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=Path("eval/bench"))
    args = parser.parse_args(argv)
    queries = dev_queries([args.queries])
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, env in (("glibc default arenas", {"RAG_MALLOC_ARENA_MAX": "0"}), ("MALLOC_ARENA_MAX=2", {"RAG_MALLOC_ARENA_MAX": "2"})):
        results[name] = bursts(args.index_dir, queries, env, args.bursts, args.clients, args.seconds, args.out / "memory-creep.log")
    command = (
        f"python -m bench.memory --index-dir {args.index_dir} --queries {args.queries} --bursts {args.bursts} "
        f"--clients {args.clients} --seconds {args.seconds}"
    )
    lines = [
        "# Serving memory under repeated bursts",
        "",
        f"Reproduce: `{command}`",
        "",
        "| malloc arenas | RSS at start MB | after each burst MB | creep first->last MB | peak MB | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['start_mb']} | {', '.join(map(str, r['after_burst_mb']))} | {r['creep_mb']} | {r['peak_mb']} | {r['errors']} |"
        )
    (args.out / "memory-creep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "memory-creep.json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
