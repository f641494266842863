"""Evaluation reports: the measured runs as JSON-ready data, and that data rendered as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rag.evaluation.harness import LABELS, EvalInput, Evaluation, RunResult, per_kind
from rag.evaluation.trec import out_of_order


# -- report ---------------------------------------------------------------------------------
def build_report(
    data: EvalInput, runs: Sequence[RunResult], evaluation: Evaluation | None, meta: Mapping, run_files: Mapping[str, str], worst: int = 10
) -> dict:
    """Everything measured, as plain JSON-ready data; `markdown` renders it."""
    errors = sum(p.severity == "error" for p in data.problems)
    report: dict = {
        **meta,
        "counts": {
            "lines": data.lines,
            "valid": len(data.queries),
            "scored": len(evaluation.qids) if evaluation else 0,
            "errors": errors,
            "warnings": len(data.problems) - errors,
        },
        "problems": [{"source": p.source, "line": p.line, "severity": p.severity, "message": p.message} for p in data.problems],
        "runs": {
            r.name: {
                "tag": r.tag,
                "file": run_files.get(r.name),
                "ms_per_query": round(r.ms_per_query, 2),
                "out_of_order": out_of_order(r.docs),
            }
            for r in runs
        },
    }
    if evaluation is None:
        return report
    report.update(
        metrics=list(next(iter(evaluation.means.values()))),
        stat_test={"name": evaluation.stat_test, "max_p": evaluation.max_p},
        means=evaluation.means,
        per_kind=per_kind(evaluation, data.queries),
        comparisons=[
            {"a": c.a, "b": c.b, "metric": c.metric, "delta": c.delta, "p_value": c.p_value, "significant": c.significant}
            for c in evaluation.comparisons
        ],
        per_query=evaluation.per_query,
    )
    first = runs[0]
    values = evaluation.per_query[first.name]
    primary = report["metrics"][0]  # nDCG@10 by default
    order = sorted(evaluation.qids, key=lambda q: (values[q][primary], sum(values[q].values()), q))
    by_qid = {q.qid: q for q in data.queries}
    report["worst"] = {"run": first.name, "by": primary, "queries": []}
    for qid in order[:worst]:
        q, judged = by_qid[qid], data.judgments.get(qid, {})
        hits = [{"rank": d.rank, "slug": d.doc, "score": d.score, "grade": judged.get(d.doc)} for d in first.docs[qid][:5]]
        ranks = {d.doc: d.rank for d in first.docs[qid]}
        relevant = [{"slug": s, "grade": g, "rank": ranks.get(s)} for s, g in sorted(judged.items(), key=lambda kv: (-kv[1], kv[0]))]
        report["worst"]["queries"].append(
            {
                "qid": qid,
                "kind": q.kind,
                "query": q.text,
                "filters": {k: v for k, v in q.filters.to_dict().items() if v is not None},
                "metrics": values[qid],
                "hits": hits,
                "relevant": relevant,
            }
        )
    return report


def markdown(report: Mapping) -> str:
    """The report for people: summary per retriever, significance of each pair, per-kind means, worst queries."""
    c = report["counts"]
    out = [
        "# Retrieval evaluation",
        "",
        f"- queries: `{report.get('queries')}` ({c['lines']} lines, {c['valid']} valid, {c['scored']} scored; {c['errors']} errors, "
        f"{c['warnings']} warnings)",
        f"- judgments: `{report.get('qrels') or report.get('queries')}`",
        f"- index: `{report.get('index_dir')}` (build {report.get('build_id')}), k = {report.get('k')}",
    ]
    if "means" not in report:
        out += ["", "No query has a relevant judgment: runs were written, nothing was scored."]
        return "\n".join(out + _problems(report)) + "\n"
    metrics, runs = report["metrics"], report["runs"]
    test = report["stat_test"]
    out += [
        "- metrics: ranx; nDCG uses linear gains (as trec_eval's ndcg_cut); queries without a relevant judgment are not scored"
        + (f"; runs hold {report['k']} hits, so R@100 counts only those" if report.get("k", 100) < 100 else ""),
        "",
        "## Summary",
        "",
        "| retriever | queries | " + " | ".join(LABELS.get(m, m) for m in metrics) + " | median ms | run file |",
        "|---|---:|" + "---:|" * len(metrics) + "---:|---|",
    ]
    for name, means in report["means"].items():
        run_file = f"`{runs[name]['file']}`" if runs[name]["file"] else "-"
        out.append(
            f"| {name} | {c['scored']} | "
            + " | ".join(f"{means[m]:.3f}" for m in metrics)
            + f" | {runs[name]['ms_per_query']:.1f} | {run_file} |"
        )
    if report["comparisons"]:
        label = {"student": "two-sided paired Student's t-test", "fisher": "Fisher's randomization test"}.get(test["name"], test["name"])
        out += [
            "",
            "## Significance",
            "",
            f"Difference of means (first minus second) and p-value, {label}; **bold** when p < {test['max_p']} (no correction for "
            f"multiple comparisons).",
            "",
        ]
        out += ["| pair | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
        pairs: dict[tuple[str, str], dict[str, dict]] = {}
        for cmp in report["comparisons"]:
            pairs.setdefault((cmp["a"], cmp["b"]), {})[cmp["metric"]] = cmp
        for (a, b), cells in pairs.items():
            out.append(f"| {a} vs {b} | " + " | ".join(_significance(cells[m]) for m in metrics) + " |")
    if any(report["per_kind"].values()):
        out += [
            "",
            "## Per kind",
            "",
            "| kind | queries | retriever | " + " | ".join(LABELS.get(m, m) for m in metrics) + " |",
            "|---|---:|---|" + "---:|" * len(metrics),
        ]
        kinds = sorted({kind for per in report["per_kind"].values() for kind in per})
        for kind in kinds:
            for name, per in report["per_kind"].items():
                row = per[kind]
                out.append(f"| {kind} | {row['queries']} | {name} | " + " | ".join(f"{row[m]:.3f}" for m in metrics) + " |")
    worst = report["worst"]
    out += ["", f"## Worst {len(worst['queries'])} queries ({worst['run']}, by {LABELS.get(worst['by'], worst['by'])})", ""]
    for w in worst["queries"]:
        scores = ", ".join(f"{LABELS.get(m, m)} {v:.3f}" for m, v in w["metrics"].items())
        filters = "".join(f" {k}={v}" for k, v in w["filters"].items())
        kind = f" ({w['kind']})" if w["kind"] else ""
        out += [f"### {w['qid']}{kind}: {scores}", "", f"> {w['query']}", ""]
        if filters:
            out += [f"filters:{filters}", ""]
        judged = ", ".join(
            f"`{r['slug']}` ({r['grade']}, " + (f"rank {r['rank']})" if r["rank"] else "not retrieved)") for r in w["relevant"]
        )
        out += [f"judged: {judged}", "", "| rank | slug | score | grade |", "|---:|---|---:|---:|"]
        out += [f"| {h['rank']} | {h['slug']} | {h['score']:.4f} | {'' if h['grade'] is None else h['grade']} |" for h in w["hits"]]
        out.append("")
    ties = {name: len(r["out_of_order"]) for name, r in runs.items() if r["out_of_order"]}
    if ties:
        listed = ", ".join(f"{name} {n}" for name, n in ties.items())
        out += [
            f"Note: queries whose scores tie or rise along the ranking (ties, or names pinned first): {listed}. The metrics score the "
            f"ranking as returned; trec_eval re-sorts such lines by score (ties by docno)."
        ]
    return "\n".join(out + _problems(report)) + "\n"


def _significance(cmp: Mapping) -> str:
    if cmp["p_value"] is None:
        return f"{cmp['delta']:+.3f} (identical)"
    cell = f"{cmp['delta']:+.3f} (p={cmp['p_value']:.3f})"
    return f"**{cell}**" if cmp["significant"] else cell


def _problems(report: Mapping) -> list[str]:
    if not report["problems"]:
        return []
    return ["", "## Input problems", ""] + [f"- `{p['source']}:{p['line']}` {p['severity']}: {p['message']}" for p in report["problems"]]
