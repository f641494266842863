"""How well `similar` finds the curated relationships (issue 28): eval/similar.md and .json.

    python -m lab.similar --index patterns:index/patterns --index bmn:index/bmn --index commons-os:index/commons-os \\
        --report eval/similar.md

For each pattern, its curated neighbours (the relationship graph, resolved, both directions) are compared with its top
`--k` similar patterns; the report gives, per library, how many curated neighbours appear there in all (the figure
`rag/search/graph.py` quotes), the share of patterns with at least one, and the mean per pattern that has any.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.common import markdown, write_report
from rag.index.search_index import SearchIndex
from rag.search.graph import Graph, similar


def measure(index: SearchIndex, k: int) -> dict[str, float]:
    graph = Graph(index.patterns)
    found = with_any = with_curated = 0
    for p in index.patterns:
        curated = {r.slug for r in graph.related(p.slug)}
        if not curated:
            continue
        hits = len(curated & {s.slug for s in similar(index, p.slug, k)})
        found += hits
        with_curated += 1
        with_any += hits > 0
    return {
        "patterns": len(index.patterns),
        "with_curated": with_curated,
        "curated_in_top_k": found,
        "share_with_one": round(with_any / with_curated, 4) if with_curated else 0.0,
        "mean_per_pattern": round(found / with_curated, 4) if with_curated else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", action="append", required=True, metavar="NAME:INDEX_DIR", help="a library's index (repeat)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--report", type=Path, default=Path("eval/similar.md"))
    args = ap.parse_args(argv)
    data, rows = {}, []
    for spec in args.index:
        name, _, index_dir = spec.partition(":")
        data[name] = measure(SearchIndex.open(Path(index_dir)), args.k)
        d = data[name]
        rows.append(
            f"| {name} | {d['patterns']} | {d['with_curated']} | {d['curated_in_top_k']} | {d['share_with_one']:.3f} | "
            f"{d['mean_per_pattern']:.3f} |"
        )
    lines = [
        f"Curated neighbours of each pattern (relationship graph, both directions) found in its top {args.k} `similar`.",
        "",
        f"| library | patterns | with curated neighbours | curated in top {args.k} | share with at least one | mean per pattern |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    options = [f"--index {s}" for s in args.index] + [f"--k {args.k}", f"--report {args.report}"]
    text = markdown("similar against the curated relationships", " ".join(["python -m lab.similar", *options]), lines)
    write_report(args.report, text, data)


if __name__ == "__main__":
    main()
