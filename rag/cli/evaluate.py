"""`rag eval`: run retriever variants over a query set, write TREC runs, score them with ranx, report; or
run a named table of variants (`--variants`, rag.evaluation.variants) over one or more `--set`s.

Registered in rag/cli/app.py. Needs the `eval` extra (ranx); reports and runs are written only where
--report and --run-out say.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import JsonFlag, fail, index_encoder, milvus_settings, setup_logging

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
    queries: Annotated[
        Path | None,
        typer.Argument(
            help="Queries JSONL: {qid, query, filters?, relevant?: {slug: grade}, kind?}. Not with --variants (give --set).",
            show_default=False,
        ),
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="TREC qrels `qid 0 slug grade`; replaces 'relevant' on the query lines.")
    ] = None,
    retriever: Annotated[
        str | None, typer.Option("--retriever", help="hybrid, dense, lexical or all (one run each); default hybrid.", show_default=False)
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Hits per query in the runs.")] = 100,
    run_out: Annotated[
        Path | None,
        typer.Option(
            "--run-out",
            help="TREC run file; with --retriever all, a template: '{retriever}' in it is replaced, else the name is inserted before the "
            "suffix (pat.trec -> pat.hybrid.trec, pat -> pat.hybrid.trec).",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write the report to FILE: Markdown, or JSON when FILE ends in .json. With --variants: Markdown to FILE and JSON beside "
            "it (FILE.json).",
        ),
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            "--variants",
            metavar="TABLE",
            help="Run a named table of retriever variants instead: ablation (each signal left out) or tuning (the ranking defaults "
            "re-measured); rows compared with the table's default row (paired t-test on nDCG@10, p < 0.05). Needs --set.",
            show_default=False,
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="[NAME:]INDEX_DIR:QUERIES",
            help="With --variants: an index and its judged queries, e.g. index/bmn:eval/dev/bmn.jsonl (NAME defaults to the queries "
            "file's stem); repeat for more sets.",
            show_default=False,
        ),
    ] = None,
    rows: Annotated[
        list[str] | None,
        typer.Option(
            "--row",
            metavar="ROW",
            help="With --variants: only this row of the table (repeatable); the default row always runs.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
    index_dir: Annotated[Path | None, typer.Option("--index-dir", help="Index directory; default index.", show_default=False)] = None,
) -> None:
    """Evaluate retrieval on a query set: TREC runs, nDCG@10, Recall@10/100, MRR@10, P@1, paired significance tests.

    Or run a table of variants over several sets and write its report (the header names the command that
    regenerates it):

        rag eval --variants tuning --set index/bmn:eval/dev/bmn.jsonl --set index/patterns:eval/dev/patterns.jsonl --report eval/tuning.md

    Exit 0 when evaluated (even with problems on some lines), 2 when the input is unusable.
    """
    setup_logging()
    if importlib.util.find_spec("ranx") is None:
        fail("`rag eval` needs ranx, in the package's eval extra: run `.venv/bin/pip install -e '.[eval]'` (`make test` installs it)")
    if variants is not None or sets or rows:
        given = [
            name
            for name, value in (
                ("QUERIES", queries),
                ("--qrels", qrels),
                ("--retriever", retriever),
                ("--run-out", run_out),
                ("--index-dir", index_dir),
            )
            if value is not None
        ]
        if variants is None:
            fail(f"{'--set' if sets else '--row'} needs --variants TABLE")
        if given:
            fail(f"--variants runs over the --set query sets; {', '.join(given)} applies only to a single query set")
        _eval_variants(variants, sets or [], rows or [], k, report, as_json)
    if queries is None:
        fail("give a QUERIES file (with --index-dir), or --variants TABLE with --set INDEX_DIR:QUERIES.jsonl")
    retriever = retriever or "hybrid"
    index_dir = index_dir or Path("index")
    if retriever not in CHOICES:
        fail(f"--retriever must be one of {', '.join(CHOICES)}, got {retriever!r}")
    for label, path in (("queries file", queries), ("qrels file", qrels)):
        if path is not None and not path.is_file():
            fail(f"{label} not found: {path}")
    from rag.errors import RagError
    from rag.evaluation.harness import VARIANTS, evaluate, load_input, run_queries, variant
    from rag.evaluation.report import build_report, markdown
    from rag.evaluation.trec import write_run
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

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


def _eval_variants(name: str, specs: list[str], rows: list[str], k: int, report: Path | None, as_json: bool) -> None:
    """`rag eval --variants`: every row of the table over every set, one report (Markdown + JSON beside it)."""
    from rag.errors import RagError
    from rag.evaluation import sweep
    from rag.evaluation.harness import load_input
    from rag.evaluation.variants import TABLES
    from rag.index.search_index import SearchIndex
    from rag.search.retriever import Retriever

    if name not in TABLES:
        fail(f"unknown variant table {name!r}; the tables are {', '.join(TABLES)}")
    table = TABLES[name]
    try:
        chosen = table.select(rows)
    except KeyError as exc:
        fail(f"--row {exc.args[0]!r} is not a row of the {name} table; its rows are: " + "; ".join(v.name for v in table.variants))
    if not specs:
        fail(f"--variants needs at least one --set {sweep.SET_FORMAT}")
    if report is not None and report.suffix == ".json":
        fail("with --variants, --report names the Markdown file; the JSON is written beside it (FILE.json)")
    query_sets = []
    for spec in specs:
        try:
            query_sets.append(sweep.parse_set(spec))
        except ValueError as exc:
            fail(str(exc))
    seen: dict[str, str] = {}
    for qs in query_sets:
        if qs.name in seen:
            fail(f"--set {qs.spec!r} and --set {seen[qs.name]!r} are both named {qs.name!r}; name one with NAME:INDEX_DIR:QUERIES.jsonl")
        seen[qs.name] = qs.spec
    results = []
    for qs in query_sets:
        try:
            embedder = index_encoder(qs.index_dir)
            index = SearchIndex.open(qs.index_dir, expected_model=embedder.info.record, milvus=milvus_settings())
            base = Retriever(index, embedder)
            if not 1 <= k <= base.settings.max_k:
                fail(f"-k must be between 1 and {base.settings.max_k}, got {k}")
            data = load_input(qs.queries, base, k)
        except RagError as exc:
            fail(f"--set {qs.name}: {exc}")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"--set {qs.name}: cannot read the input: {exc}")
        for problem in data.problems:
            typer.echo(str(problem), err=True)
        if not data.scored:
            fail(
                f"--set {qs.name}: no query in {qs.queries} has a relevant judgment ({len(data.queries)} valid of {data.lines} lines), so "
                f"there is nothing to score"
            )
        try:
            results.append(sweep.run_set(qs, index, embedder, data, chosen, k))
        except RagError as exc:
            fail(f"--set {qs.name}: {exc.field}: {exc}" if exc.field else f"--set {qs.name}: {exc}")
    result = sweep.build_report(table, chosen, results, sweep.command(name, specs, rows, k, report), k)
    text = sweep.markdown(result)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text, encoding="utf-8")
        report.with_suffix(".json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else text)
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
    console.print(
        f"{counts['valid']} of {counts['lines']} lines valid, {counts['scored']} scored; {counts['errors']} errors, {counts['warnings']} "
        f"warnings"
    )
