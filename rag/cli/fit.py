"""`rag fit`: fit the ranking (the learned fusion's weights and the relevance calibration) to a library that has judged
queries, with nested cross-validation, and store it with the index only when it beats the shipped defaults."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import IndexDir, JsonFlag, fail, index_encoder, milvus_settings, setup_logging


def fit(
    queries: Annotated[
        Path | None,
        typer.Argument(
            help="Judged queries JSONL ({qid, query, filters?, relevant: {slug: grade}}), at least 20 with judgments.", show_default=False
        ),
    ] = None,
    index_dir: IndexDir = Path("index"),
    folds: Annotated[int, typer.Option("--folds", min=2, max=10, help="Outer cross-validation folds.")] = 5,
    reset: Annotated[
        bool, typer.Option("--reset", help="Remove the index's fit: serve and evaluate with the shipped defaults again.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fit the ranking to your judged queries; stored with the index (used by serve, search and eval) only when it beats
    the defaults on held-out queries (paired t-test p < 0.05). --reset removes it."""
    setup_logging(quiet=True)
    from rag.errors import RagError
    from rag.index.store import current_build, read_manifest, write_fitted

    if reset:
        try:
            manifest = read_manifest(current_build(index_dir))
            if manifest.fit is None:
                typer.echo(f"{index_dir} has no fit; it ranks with the shipped defaults")
                return
            build = write_fitted(index_dir, None, None)
        except RagError as exc:
            fail(str(exc))
        typer.echo(f"removed the fit: {index_dir} ranks with the shipped defaults again (build {build.name})")
        return
    if queries is None:
        fail("give the judged queries file (or --reset)")
    if not queries.is_file():
        fail(f"queries file not found: {queries}")
    from rag.config import RetrieverSettings
    from rag.evaluation import fit as fitting
    from rag.evaluation.harness import parse_queries
    from rag.index.search_index import SearchIndex
    from rag.search.learned import FEATURES
    from rag.search.retriever import Retriever, default_ranker

    parsed, problems, _ = parse_queries(queries)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        fail(f"{queries}: line {errors[0].line}: {errors[0].message}")
    judged = [q for q in parsed if q.relevant]
    try:
        index = SearchIndex.open(index_dir, milvus=milvus_settings())
        retriever = Retriever(index, index_encoder(index_dir), RetrieverSettings(use_fit=False), features=frozenset(FEATURES))
        started = time.perf_counter()
        data = fitting.extract("library", retriever, judged)
        result = fitting.fit_library(data, default_ranker(), folds)
    except RagError as exc:
        fail(str(exc))
    seconds = time.perf_counter() - started
    build = None
    if result.accepted:
        source = f"rag fit {queries} --index-dir {index_dir} --folds {folds}"
        body = {
            "ranker": {"weights": result.ranker, "source": source},
            "calibration": {**result.calibration.to_dict(), "source": source, "metrics": {"cross_validated": result.calibration_figures}},
            "report": result.to_dict(),
        }
        record = {
            "file": "fit.json",
            "queries": result.queries,
            "ndcg_before": result.before["ndcg@10"],
            "ndcg_after": result.after["ndcg@10"],
            "p_value": result.p_value,
            "source": source,
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            build = write_fitted(index_dir, (json.dumps(body, indent=1) + "\n").encode("utf-8"), record)
        except RagError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(
            json.dumps(
                {**result.to_dict(), "stored": build is not None, "build_id": build.name if build else None, "seconds": round(seconds, 1)},
                indent=2,
            )
        )
    else:
        lines = [
            f"{result.queries} judged queries, {folds}-fold nested cross-validation ({seconds:.0f} s):",
            *(
                f"  {metric:<12} defaults {result.before[metric]:.3f}   fit (held out) {result.after[metric]:.3f}"
                for metric in result.before
            ),
            result.reason + ".",
        ]
        if build is not None:
            cal = result.calibration_figures
            lines.append(f"held-out calibration: ECE top 10 {cal.get('ece_top10', 0):.3f}, top 1 {cal.get('ece_top1', 0):.3f}")
            lines.append(
                f"stored with the index as build {build.name}: rag serve, search and eval rank with it; `rag fit --reset` removes it"
            )
        typer.echo("\n".join(lines))
    if not result.accepted:
        raise typer.Exit(1)
