"""A table of retriever variants (rag.evaluation.variants) run over judged query sets: `rag eval --variants`.

Every variant of the table searches every scored query of every set with the same index and encoder; ranx
scores the runs through the harness (`evaluate`), and each variant is compared with the table's default row
by the harness's paired test. The report is JSON-ready data (`build_report`) rendered as Markdown
(`markdown`); the per-set verdicts and the row's decision are derived from the numbers (`verdict`,
`decision`), never written by hand.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.evaluation.harness import LABELS, EvalInput, Evaluation, evaluate, run_queries
from rag.evaluation.variants import Variant, VariantTable, changes, describe
from rag.search.retriever import Retriever

METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "mrr@10", "precision@1")
PRIMARY = "ndcg@10"  # the metric the verdicts and decisions read
MAX_P = 0.05  # a difference counts as better or worse only below this p-value
SET_FORMAT = "[NAME:]INDEX_DIR:QUERIES.jsonl"


@dataclass(frozen=True, slots=True)
class QuerySet:
    name: str
    index_dir: Path
    queries: Path
    spec: str  # as given on the command line


@dataclass(frozen=True, slots=True)
class SetResult:
    query_set: QuerySet
    build_id: str
    data: EvalInput
    evaluation: Evaluation


def parse_set(spec: str) -> QuerySet:
    """`INDEX_DIR:QUERIES.jsonl` (named after the queries file's stem) or `NAME:INDEX_DIR:QUERIES.jsonl`.
    ValueError names the problem."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise ValueError(f"--set {spec!r}: expected {SET_FORMAT}, e.g. index/bmn:eval/dev/bmn.jsonl")
    *name, index_dir, queries = parts
    query_set = QuerySet(name[0] if name else Path(queries).stem, Path(index_dir), Path(queries), spec)
    if not query_set.queries.is_file():
        raise ValueError(f"--set {spec!r}: queries file not found: {queries}")
    if not query_set.index_dir.is_dir():
        raise ValueError(f"--set {spec!r}: index directory not found: {index_dir}")
    return query_set


class MemoEncoder:
    """The index's encoder, encoding each query text once: every variant searches the same queries."""

    def __init__(self, inner):
        self.inner = inner
        self._vectors: dict[str, np.ndarray] = {}

    @property
    def info(self):
        return self.inner.info

    @property
    def device(self) -> str:
        return self.inner.device

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    @property
    def runtime(self) -> str:
        return self.inner.runtime

    def encode(self, texts, progress: bool = False) -> np.ndarray:
        return self.inner.encode(texts, progress)

    def encode_query(self, query: str) -> np.ndarray:
        if query not in self._vectors:
            self._vectors[query] = self.inner.encode_query(query)
        return self._vectors[query].copy()


def run_set(query_set: QuerySet, index, embedder, data: EvalInput, variants: Sequence[Variant], k: int) -> SetResult:
    """Every variant over the set's scored queries, scored with ranx; the first variant is the default."""
    memo = MemoEncoder(embedder)
    scored = set(data.scored)
    queries = [q for q in data.queries if q.qid in scored]
    # evidence passages are shown with a hit but never rank it: the runs skip them (most of a search's time at k=100)
    runs = [run_queries(Retriever(index, memo, v.settings.with_(evidence=0)), queries, k, v.name) for v in variants]
    evaluation = evaluate(runs, {q: data.judgments[q] for q in scored}, METRICS, max_p=MAX_P, baseline=variants[0].name)
    return SetResult(query_set, index.version, data, evaluation)


def verdict(delta: float, p_value: float | None, significant: bool) -> str:
    """One set's verdict on a variant against the default, from the paired test of the primary metric."""
    if p_value is None:  # the harness's test found the per-query values identical
        return "no change" if delta == 0 else "within noise"
    if significant:
        return "better" if delta > 0 else "worse"
    return "within noise"


def decision(verdicts: Mapping[str, str]) -> str:
    """The row's decision from its per-set verdicts: one word when every set agrees, else each set's."""
    if len(set(verdicts.values())) == 1:
        only = next(iter(verdicts.values()))
        return only if len(verdicts) == 1 else f"{only} on every set"
    return "; ".join(f"{v} on {name}" for name, v in verdicts.items())


def command(table: str, specs: Sequence[str], rows: Sequence[str], k: int, report: Path | None) -> str:
    """The one command line that regenerates the report."""
    words = ["rag", "eval", "--variants", table]
    for spec in specs:
        words += ["--set", spec]
    for row in rows:
        words += ["--row", row]
    if k != 100:
        words += ["-k", str(k)]
    if report is not None:
        words += ["--report", str(report)]
    return " ".join(shlex.quote(w) for w in words)


def build_report(table: VariantTable, variants: Sequence[Variant], results: Sequence[SetResult], command_line: str, k: int) -> dict:
    """Everything measured, as JSON-ready data; `markdown` renders it."""
    default = variants[0].name
    report: dict = {
        "table": table.name,
        "title": table.title,
        "about": list(table.about),
        "command": command_line,
        "k": k,
        "metrics": list(METRICS),
        "decision_rule": {"metric": PRIMARY, "stat_test": results[0].evaluation.stat_test, "max_p": MAX_P},
        "sets": {},
        "variants": [],
    }
    if any(v.settings.fusion == "learned" for v in variants):
        from rag.search.learned import LinearRanker

        ranker = LinearRanker.load()
        report["ranker"] = {"weights": ranker.weights, "source": ranker.source}
    for r in results:
        data, qs = r.data, r.query_set
        errors = sum(p.severity == "error" for p in data.problems)
        report["sets"][qs.name] = {
            "queries": str(qs.queries),
            "index_dir": str(qs.index_dir),
            "build_id": r.build_id,
            "lines": data.lines,
            "valid": len(data.queries),
            "scored": len(r.evaluation.qids),
            "errors": errors,
            "warnings": len(data.problems) - errors,
        }
    for v in variants:
        row: dict = {"name": v.name, "what": v.what, "changes": changes(v.settings, variants[0].settings), "sets": {}}
        for r in results:
            ev = r.evaluation
            entry: dict = {"means": ev.means[v.name]}
            if v.name != default:
                tests = {c.metric: c for c in ev.comparisons if c.a == default and c.b == v.name}
                base = ev.means[default]
                entry["vs_default"] = {
                    m: {"delta": ev.means[v.name][m] - base[m], "p_value": c.p_value, "significant": c.significant}
                    for m, c in tests.items()
                }
                main = entry["vs_default"][PRIMARY]
                entry["verdict"] = verdict(main["delta"], main["p_value"], main["significant"])
            row["sets"][r.query_set.name] = entry
        row["decision"] = "default" if v.name == default else decision({s: e["verdict"] for s, e in row["sets"].items()})
        report["variants"].append(row)
    return report


def markdown(report: Mapping) -> str:
    """The report for people: how to regenerate it, the sets, a summary over the sets, then each set in full."""
    sets, metrics, rule = list(report["sets"]), report["metrics"], report["decision_rule"]
    primary = LABELS.get(rule["metric"], rule["metric"])
    test = {"student": "two-sided paired Student's t-test"}.get(rule["stat_test"], rule["stat_test"])
    out = [
        f"# {report['title']}",
        "",
        "Generated by `rag eval`; do not edit by hand. Every number below comes from this one command:",
        "",
        "```sh",
        report["command"],
        "```",
        "",
        *[line for paragraph in report["about"] for line in (paragraph, "")],
        "Query sets (judged queries only; each index is the build named):",
        "",
    ]
    for name, s in report["sets"].items():
        out.append(
            f"- `{name}`: `{s['queries']}`, {s['scored']} queries scored of {s['lines']} lines, index `{s['index_dir']}` (build "
            f"{s['build_id']})"
        )
    out += [
        "",
        f"Metrics from ranx over each set's judged queries (nDCG with linear gains, as trec_eval's ndcg_cut), {report['k']} hits per "
        f"query.",
        f"Decision: on each set a row is **better** or **worse** than the default when its {primary} differs with p < {rule['max_p']}",
        f"({test} over the set's queries, no correction for multiple comparisons), **within noise** otherwise, and",
        f"**no change** when every query's {primary} is the same as the default's. A change in brackets is bold when p < {rule['max_p']}.",
    ]
    if "ranker" in report:
        weights = ", ".join(f"{k} {v:g}" for k, v in report["ranker"]["weights"].items())
        out.append(
            f"The learned fusion's weights (rag/search/ranker.json): {weights} ({report['ranker']['source'] or 'no source recorded'})."
        )
    out += ["", f"## Summary ({primary}, change from the default in brackets)", ""]
    out += [
        "| variant | what changes | settings | " + " | ".join(f"{s} {primary}" for s in sets) + " | decision |",
        "|---|---|---|" + "---:|" * len(sets) + "---|",
    ]
    for v in report["variants"]:
        cells = [_cell(v["sets"][s], rule["metric"]) for s in sets]
        settings = f"`{describe(v['changes'])}`" if v["changes"] else "(default)"
        out.append(f"| {v['name']} | {v['what']} | {settings} | " + " | ".join(cells) + f" | {v['decision']} |")
    for name in sets:
        s = report["sets"][name]
        out += ["", f"## {name} ({s['scored']} queries)", ""]
        out += [
            "| variant | " + " | ".join(LABELS.get(m, m) for m in metrics) + f" | p ({primary}) | verdict |",
            "|---|" + "---:|" * (len(metrics) + 1) + "---|",
        ]
        for v in report["variants"]:
            entry = v["sets"][name]
            test_p = entry.get("vs_default", {}).get(rule["metric"], {}).get("p_value")
            p_cell = (
                "-" if "vs_default" not in entry else ("identical" if test_p is None else f"{test_p:.3f}" if test_p >= 0.001 else "<0.001")
            )
            out.append(
                f"| {v['name']} | " + " | ".join(_cell(entry, m) for m in metrics) + f" | {p_cell} | {entry.get('verdict', 'default')} |"
            )
    return "\n".join(out) + "\n"


def _cell(entry: Mapping, metric: str) -> str:
    value = f"{entry['means'][metric]:.3f}"
    if "vs_default" not in entry:
        return value
    cmp = entry["vs_default"][metric]
    delta = f"{cmp['delta']:+.3f}"
    return f"{value} (**{delta}**)" if cmp["significant"] else f"{value} ({delta})"
