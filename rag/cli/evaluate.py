"""`rag eval`: run retriever variants over a query set, write TREC runs, score them with ranx, report.

Registered in rag/cli/app.py. Needs the `eval` extra (ranx); reports and runs are written only where
--report and --run-out say.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.cli.common import IndexDir, JsonFlag, fail, index_encoder, milvus_settings, setup_logging

CHOICES = ("hybrid", "dense", "lexical", "all")


def run_path(template: Path, retriever: str, several: bool) -> Path:
    """Where a retriever's run goes: `{retriever}` in FILE is replaced; with several retrievers and no
    placeholder, the name is inserted before the suffix (runs/pat.trec -> runs/pat.hybrid.trec) or, without a
    suffix, appended with `.trec` (runs/pat -> runs/pat.hybrid.trec); a single retriever writes FILE as given."""
    text = str(template)
    if "{retriever}" in text:
        return Path(text.replace("{retriever}", retriever))
    if not several:
        return template
    if template.suffix:
        return template.with_name(f"{template.stem}.{retriever}{template.suffix}")
    return template.with_name(f"{template.name}.{retriever}.trec")


def eval_(
    queries: Annotated[Path, typer.Argument(help="Queries JSONL: {qid, query, filters?, relevant?: {slug: grade}, kind?}.")],
    qrels: Annotated[Optional[Path], typer.Option("--qrels", help="TREC qrels `qid 0 slug grade`; replaces 'relevant' on the query lines.")] = None,
    retriever: Annotated[str, typer.Option("--retriever", help="hybrid, dense, lexical or all (one run each).")] = "hybrid",
    k: Annotated[int, typer.Option("-k", "--k", help="Hits per query in the runs.")] = 100,
    run_out: Annotated[Optional[Path], typer.Option("--run-out", help="TREC run file; with --retriever all, a template: '{retriever}' in it is replaced, else the name is inserted before the suffix (pat.trec -> pat.hybrid.trec, pat -> pat.hybrid.trec).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the report to FILE: Markdown, or JSON when FILE ends in .json.")] = None,
    as_json: JsonFlag = False,
    index_dir: IndexDir = Path("index"),
) -> None:
    """Evaluate retrieval on a query set: TREC runs, nDCG@10, Recall@10/100, MRR@10, P@1, paired significance tests.

    Exit 0 when evaluated (even with problems on some lines), 2 when the input is unusable.
    """
    setup_logging()
    if importlib.util.find_spec("ranx") is None:
        fail("`rag eval` needs ranx, in the package's eval extra: run `.venv/bin/pip install -e '.[eval]'` (`make test` installs it)")
    if retriever not in CHOICES:
        fail(f"--retriever must be one of {', '.join(CHOICES)}, got {retriever!r}")
    for label, path in (("queries file", queries), ("qrels file", qrels)):
        if path is not None and not path.is_file():
            fail(f"{label} not found: {path}")
    from rag.evaluation.report import build_report, markdown
    from rag.evaluation.harness import VARIANTS, evaluate, load_input, run_queries, variant
    from rag.search.retriever import Retriever
    from rag.index.search_index import SearchIndex
    from rag.errors import RagError
    from rag.evaluation.trec import write_run

    try:
        embedder = index_encoder(index_dir)
        index = SearchIndex.open(index_dir, expected_model=embedder.info.record, milvus=milvus_settings())
    except RagError as exc:
        fail(str(exc))
    base = Retriever(index, embedder)
    if not 1 <= k <= base.settings.max_k:
        fail(f"-k must be between 1 and {base.settings.max_k}, got {k}")
    try:
        data = load_input(queries, base, k, qrels)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the input: {exc}")
    for problem in data.problems:
        typer.echo(str(problem), err=True)
    if not data.queries:
        fail(f"no valid query in {queries} ({data.lines} non-blank lines); fix the lines reported above")
    scored = data.scored
    if not scored and run_out is None:
        fail("no query has a relevant judgment, so there is nothing to score; give --run-out FILE to only write the runs")

    names = list(VARIANTS) if retriever == "all" else [retriever]
    if retriever != "lexical":
        base.embedder.encode_query(data.queries[0].text)  # load the model before the timed searches
    try:
        runs = [run_queries(variant(base, name), data.queries, k, name) for name in names]
    except RagError as exc:  # e.g. the Milvus engine became unreachable mid-run
        fail(f"{exc.field}: {exc}" if exc.field else str(exc))
    run_files: dict[str, str] = {}
    if run_out is not None:
        for run in runs:
            path = run_path(run_out, run.name, len(runs) > 1)
            write_run(path, run.docs, run.tag)
            run_files[run.name] = str(path)
    evaluation = evaluate(runs, {q: data.judgments[q] for q in scored}) if scored else None
    meta = {"queries": str(queries), "qrels": str(qrels) if qrels else None, "index_dir": str(index_dir), "build_id": index.version, "k": k}
    result = build_report(data, runs, evaluation, meta, run_files)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2, ensure_ascii=False) if report.suffix == ".json" else markdown(result)
        report.write_text(text, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_summary(result)
    raise typer.Exit(0)


def _print_summary(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from rag.evaluation.harness import LABELS

    console = Console()
    counts = result["counts"]
    if "means" in result:
        table = Table("retriever", "queries", *(LABELS.get(m, m) for m in result["metrics"]), "run file", title="retrieval evaluation")
        for name, means in result["means"].items():
            table.add_row(name, str(counts["scored"]), *(f"{means[m]:.3f}" for m in result["metrics"]), result["runs"][name]["file"] or "-")
        console.print(table)
    else:
        for name, run in result["runs"].items():
            console.print(f"{name}: run written to {run['file']}")
    console.print(f"{counts['valid']} of {counts['lines']} lines valid, {counts['scored']} scored; {counts['errors']} errors, {counts['warnings']} warnings")
