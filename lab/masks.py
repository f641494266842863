"""What each chunk kind earns: dev-set nDCG@10 with kinds of chunks masked out of search, and the share
of encoded tokens they cost (issue 14, item 5). No re-encoding: a mask is the dense search's chunk
selection (filters before top-k), so a masked chunk is exactly as if it had never been encoded.

    python -m lab.masks --set bmn:INDEX:eval/dev/bmn.jsonl --set commons-os:INDEX:eval/dev/commons-os.jsonl \\
        --set patterns:INDEX:eval/dev/patterns.jsonl --report eval/bench/chunk-kinds.md

Kinds are section roles (summary, tension, context-label, problem, ..., other) and windows: a section
longer than the model's window is split into parts 1, 2, 3, ...; "windows <= n" keeps the first n parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from lab.common import command, markdown, parser, write_report
from rag.config import RetrieverSettings
from rag.index.engine import Selection
from rag.records.filters import Filters
from rag.search.retriever import Retriever

Keep = Callable[[object], bool]  # chunk -> kept


class MaskedRetriever(Retriever):
    """The retriever with some chunks removed from every search (as if never encoded)."""

    def __init__(self, *args, keep: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = keep

    def selection(self, filters: Filters) -> Selection:
        sel = super().selection(filters)
        chunks = self.keep if sel.chunks is None else sel.chunks & self.keep
        return Selection(sel.filters, sel.patterns, chunks)


def variants(roles: Sequence[str], max_part: int) -> dict[str, Keep]:
    table: dict[str, Keep] = {"all chunks (today)": lambda c: True}
    for n in (1, 2, 3, 4):
        if n < max_part:
            table[f"windows <= {n}"] = lambda c, n=n: c.part <= n
    for role in roles:
        table[f"- {role}"] = lambda c, role=role: c.role != role
    return table


def measure(
    sets: Sequence[tuple[str, Path, Path]], extra: dict[str, Keep] | None = None, settings: RetrieverSettings | None = None
) -> dict:
    from rag.chunking import model_token_counter
    from rag.embedding.minilm import MiniLMEncoder
    from rag.evaluation.harness import evaluate, load_input, run_queries
    from rag.index.search_index import SearchIndex

    embedder = MiniLMEncoder()
    count = model_token_counter()
    out: dict = {"sets": {}, "variants": {}}
    for name, index_dir, queries in sets:
        index = SearchIndex.open(index_dir)
        tokens = np.array(count([c.text for c in index.chunks]), dtype=np.int64)
        roles = sorted({c.role for c in index.chunks})
        max_part = max((c.part for c in index.chunks), default=1)
        table = variants(roles, max_part) | (extra or {})
        base = Retriever(index, embedder, settings)
        data = load_input(queries, base, 100)
        out["sets"][name] = {"chunks": len(index.chunks), "tokens": int(tokens.sum()), "queries": len(data.queries)}
        for label, keep_fn in table.items():
            keep = np.array([keep_fn(c) for c in index.chunks], dtype=bool)
            retriever = MaskedRetriever(index, embedder, settings, keep=keep)
            run = run_queries(retriever, data.queries, 100, label)
            means = evaluate([run], data.judgments, ("ndcg@10", "recall@10")).means[label]
            row = out["variants"].setdefault(label, {})
            row[name] = {
                "ndcg@10": means["ndcg@10"],
                "recall@10": means["recall@10"],
                "token_share": float(tokens[keep].sum() / max(1, tokens.sum())),
                "chunk_share": float(keep.mean()),
            }
    return out


def report(result: dict, command: str) -> str:
    sets = list(result["sets"])
    lines = [
        "Each row removes one kind of chunk from search (or keeps only the first n windows of each long section) and",
        "reports dev-set nDCG@10 and the share of today's encoded tokens the remaining chunks cost.",
        "",
        "| set | chunks | tokens | queries |",
        "|---|---:|---:|---:|",
    ]
    for s, info in result["sets"].items():
        lines.append(f"| {s} | {info['chunks']:,} | {info['tokens']:,} | {info['queries']} |")
    base = result["variants"]["all chunks (today)"]
    lines += ["", "| variant | " + " | ".join(f"{s} nDCG@10 (delta) | {s} tokens" for s in sets) + " |", "|---|" + "---:|---:|" * len(sets)]
    for label, row in result["variants"].items():
        cells = []
        for s in sets:
            if s not in row:
                cells += ["", ""]
                continue
            v, b = row[s], base[s]
            cells += [f"{v['ndcg@10']:.3f} ({v['ndcg@10'] - b['ndcg@10']:+.3f})", f"{v['token_share']:.2f}x"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return markdown("What each chunk kind earns (query-time masks, no re-encoding)", command, lines)


def main(argv: Sequence[str] | None = None) -> None:
    options = parser(__doc__)
    options.add_argument("--report", type=Path)
    args = options.parse_args(argv)
    result = measure([(s.name, s.index_dir, s.queries) for s in args.set])
    text = report(result, command("lab.masks", args.set))
    print(text)
    if args.report:
        write_report(args.report, text, result)


if __name__ == "__main__":
    main()
