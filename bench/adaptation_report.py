"""The adaptation benchmark's report (bench.adaptation) as Markdown, and its few headline lines (for stdout
and for the main benchmark report, which points at the full one)."""

from __future__ import annotations

from collections.abc import Mapping

COMMONS_OS = {"patterns": 3_614, "chunks": 83_379, "cold_build_seconds": 4_041}  # the full-library build of eval/bench/2026-11-29.md
LABELS = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "mrr@10": "MRR@10"}
GIB = 2**30


def _gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / GIB:.2f}"


def _p(value: float | None) -> str:
    return "same runs" if value is None else f"p={value:.3f}"


def headline(r: Mapping) -> dict:
    """The figures the main report shows: {name: value} (None where not measured)."""
    a, b, d = r.get("adapt") or {}, r.get("builds") or {}, r.get("dev") or {}
    report = a.get("report") or {}
    held = lambda side: (report.get(side) or {}).get("held_out", {}).get("ndcg@10")  # noqa: E731
    hybrid = (d.get("variants") or {}).get("hybrid", {}).get("ndcg@10") or {}
    return {
        "adapt_seconds": a.get("process_seconds"),
        "adapt_peak_rss": a.get("peak_rss"),
        "held_out_ndcg@10": (held("base"), held("adapted")),
        "base_build_seconds": b.get("base", {}).get("build", {}).get("seconds", {}).get("total"),
        "reencode_seconds": b.get("adapted", {}).get("build", {}).get("seconds", {}).get("total"),
        "cost_ratio": b.get("ratio"),
        "cost_ratio_cpu": b.get("ratio_cpu"),
        "dev_hybrid_ndcg@10": (hybrid.get("base"), hybrid.get("adapted")),
        "dev_queries": d.get("queries"),
    }


def summary(r: Mapping) -> str:
    h = headline(r)
    lines = [
        f"rag adapt: {h['adapt_seconds']} s wall, peak RSS {_gib(h['adapt_peak_rss'])} GiB; held-out nDCG@10 base "
        f"{h['held_out_ndcg@10'][0]} -> adapted {h['held_out_ndcg@10'][1]}"
    ]
    if r.get("skipped"):
        lines.append(r["skipped"])
    if h["cost_ratio"] is not None:
        lines.append(
            f"re-encoding {h['reencode_seconds']} s / base build {h['base_build_seconds']} s = {h['cost_ratio']} (CPU "
            f"{h['cost_ratio_cpu']})"
        )
    if h["dev_queries"]:
        cv = (r.get("dev") or {}).get("cross_validated")
        lines.append(
            f"dev hybrid nDCG@10 base {h['dev_hybrid_ndcg@10'][0]} -> adapted {h['dev_hybrid_ndcg@10'][1]} ({h['dev_queries']} queries; "
            f"{'cross-validated' if cv else 'not cross-validated'})"
        )
    return "\n".join(lines)


def markdown(r: Mapping) -> str:
    s, m = r["settings"], r["machine"]
    name = s["library"].rstrip("/").rsplit("/", 1)[-1]
    subset = f" ({r['files']} of its {r['library_files']} files, evenly spaced in sorted order)" if r["files"] < r["library_files"] else ""
    out = [
        f"# Library adaptation: `rag adapt` on {name}{subset}"
        f"{', cross-validated' if r.get('cross_validation') else ''}{' (--quick)' if s.get('quick') else ''}",
        "",
        f"Reproduce: `{r['command']}` (also the `adapt` section of `python -m bench`; `--skip adapt` leaves it out). "
        f"Run {r['date']}, {r.get('seconds', 0) / 60:.1f} minutes.",
        "",
        f"Machine: {m['cpus']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, torch {m['torch']} ({m['torch_threads']} "
        f"threads), "
        f"sentence-transformers {m['sentence_transformers']}, device {m['device']}. " + _busy(r),
        "",
    ]
    out += _scope(r) + _adapt_md(r)
    if r.get("skipped"):
        return "\n".join(out + ["", r["skipped"] + "."]) + "\n"
    return "\n".join(out + _builds_md(r) + _dev_md(r)) + "\n"


def _busy(r: Mapping) -> str:
    steps = [
        (label, (r.get(key) if key == "adapt" else (r.get("builds") or {}).get(key)) or {})
        for key, label in (("adapt", "rag adapt"), ("base", "base build"), ("adapted", "adapted build"))
    ]
    cores = ", ".join(f"{label} {step['other_cores']:.2f}" for label, step in steps if "other_cores" in step)
    shared = any(step.get("other_cores", 0) >= 0.2 for _, step in steps)
    return f"Cores other processes kept busy on average (bench.timing.other_cores): {cores}. " + (
        "The machine was shared with other work, so read the ratios (measured side by side, in the same run) before the seconds."
        if shared
        else "The machine was otherwise nearly idle during these steps."
    )


def _scope(r: Mapping) -> list[str]:
    cv = r.get("cross_validation")
    if cv:
        return [
            f"**Cross-validated** (`--split-all --hold-out {r['settings']['hold_out']} --cross-validate`): `rag adapt` trains on the "
            f"training share of "
            f"{r['settings']['library']} only; {cv['held_out_patterns']} patterns (the held-out share plus their near-duplicates) are "
            f"never trained on. "
            f"Sections 2 and 3 build, search and judge a library of those {cv['files']} held-out files alone, with the dev queries whose "
            f"every relevant "
            "pattern is held out: no answer the adapted model is judged on was in its training pairs."
        ]
    b = r.get("builds") or {}
    rate = (b.get("adapted") or {}).get("build", {}).get("chunks_per_second")
    here = (
        f"; at this run's re-encoding rate ({rate:.1f} chunks/s) about {COMMONS_OS['chunks'] / rate / 3600:.1f} h"
        if rate and not r["settings"].get("quick")
        else ""
    )
    return [
        f"Only {r['settings']['library']} is measured here. commons-os ({COMMONS_OS['patterns']:,} patterns, {COMMONS_OS['chunks']:,} "
        f"chunks) is too slow for these 2 cores: "
        f"one encoding of it alone is extrapolated at {COMMONS_OS['cold_build_seconds'] / 60:.0f} minutes in "
        f"eval/bench/2026-11-29.md{here}; the bench would need two "
        "(base and adapted) plus training, and its cross-validated measurement (train on one half, evaluate the queries of the other) "
        "needs a GPU or more cores."
    ]


def _adapt_md(r: Mapping) -> list[str]:
    a = r["adapt"]
    rep, sec, st = a["report"], a["report"]["seconds"], r["settings"]
    pairs = sum(rep["pairs"].values())
    out = [
        "",
        "## 1. `rag adapt`",
        "",
        f"Through its Python entry point (rag.adapt.run.adapt) in a fresh process: `--epochs {st['epochs']} --max-pairs {st['max_pairs']} "
        f"--seed {st['seed']} --batch-size {st['batch_size']}"
        f"{' --force' if st['force'] else ''}`. {rep['patterns']} patterns, {len(rep['held_out'])} held out (never trained on); {pairs} "
        f"training pairs "
        f"({', '.join(f'{k} {v}' for k, v in rep['pairs'].items())}), {rep['negatives']} with a hard negative; {rep['epochs_run']} "
        f"epoch(s) run, best epoch {rep['best_epoch']}, on {rep['device']}. "
        + ("Model written." if rep["written"] else f"**Refused by the guard**: {a['refused']}"),
        "",
        "| cost | value |",
        "|---|---:|",
        f"| wall s, process start to exit (imports, model load, mining, validation, training, writing) | {a['process_seconds']:.1f} |",
        f"| wall s of the adapt() call: mine / validate the base / train | {a['call_seconds']:.1f}: {sec.get('mine', 0):.1f} / "
        f"{sec.get('validate_base', 0):.1f} / {sec.get('train', 0):.1f} |",
        f"| CPU s of the process | {a['cpu_seconds']:.1f} |",
        f"| peak RSS GiB | {_gib(a['peak_rss'])} |",
        f"| training pairs/s | {rep['pairs_per_second']:.2f} |",
        "",
        f"| held-out validation ({rep['base']['held_out']['queries']} queries: a held-out pattern's Problem or Context -> its summary "
        f"among all summaries) | base | adapted | diff |",
        "|---|---:|---:|---:|",
    ]
    for metric in ("ndcg@10", "mrr@10"):
        base, adapted = rep["base"]["held_out"][metric], (rep["adapted"] or rep["base"])["held_out"][metric]
        out.append(f"| {LABELS[metric]} | {base:.4f} | {adapted:.4f} | {adapted - base:+.4f} |")
    return out


def _builds_md(r: Mapping) -> list[str]:
    b = r["builds"]
    warm = r["settings"].get("base_cache")
    out = [
        "",
        "## 2. Re-encoding: a cold build with each model",
        "",
        "Each into a fresh index folder with its own empty embedding cache, in a fresh process, timed with its model already loaded "
        "(the adapted one as `rag index LIBRARY --model MODEL_DIR` loads it)."
        + (
            f" **The base build reused the base model's vectors from `{warm}`** (built before), so its time is not a cold build's and the "
            f"cost ratio below is not one; "
            "the adapted build's encode seconds are the re-encoding's cost."
            if warm
            else ""
        ),
        "",
        "| model | chunks | encoded | encode s | total s | CPU s | chunks/s | process peak RSS GiB | other cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in ("base", "adapted"):
        step, build = b[key], b[key]["build"]
        out.append(
            f"| {key} (`{step['model']}`) | {build['chunks']} | {build['chunks_encoded']} | {build['seconds'].get('encode', 0):.1f} | "
            f"{build['seconds']['total']:.1f} | "
            f"{build['cpu_seconds']:.1f} | {build['chunks_per_second']:.1f} | {_gib(step['peak_rss'])} | {build['other_cores']:.2f} |"
        )
    adopt = r["adapt"]["process_seconds"] + b["adapted"]["build"]["seconds"]["total"]
    out += [
        "",
        f"Cost ratio, re-encoding / base build: **{b['ratio']:.3f}** in wall seconds, {b['ratio_cpu']:.3f} in CPU seconds (the issue's "
        f"budget: one extra full encoding). "
        f"Adopting the adapted model on an indexed library costs `rag adapt` plus one re-encoding: {adopt:.0f} s here, "
        f"{adopt / b['base']['build']['seconds']['total']:.1f} x the base build.",
    ]
    return out


def _dev_md(r: Mapping) -> list[str]:
    d = r.get("dev") or {}
    out = ["", "## 3. Dev queries: `rag eval`, base vs adapted on the same chunks", ""]
    if "error" in d:
        return out + [f"Not measured: {d['error']}."]
    out += [
        f"`rag eval`'s harness (rag.evaluation.harness: runs of k = {d['k']}, metrics from ranx, paired two-sided t-test per query) over "
        f"the {d['queries']} judged queries of "
        f"`{d['file']}` with a relevant pattern in the library ({d['left_out']} left out), on the two indexes of section 2. Lexical uses "
        f"no vectors: a control.",
        "",
        (
            "**Cross-validated**: the library searched holds only patterns never trained on, and only the queries whose every relevant "
            "pattern is among them are judged. "
            if d.get("cross_validated")
            else "**These dev figures are not cross-validated**: the dev queries' relevant patterns were in the library `rag adapt` "
            "trained on (their texts made "
            "training pairs; the queries themselves never did), so a gain may be memorised pattern text. The cross-validated figure is "
            "the held-out one of section 1. "
        )
        + f"{d['held_out_queries']} dev {'query has' if d['held_out_queries'] == 1 else 'queries have'} every relevant pattern among the "
        f"held-out ones" + (" (last column; too few to conclude from)." if d["held_out_queries"] else "."),
        "",
        "| retriever | "
        + " | ".join(f"{LABELS[m]} base | adapted | diff" for m in LABELS)
        + " | held-out queries nDCG@10 base / adapted |",
        "|---|" + "---:|---:|---|" * len(LABELS) + "---|",
    ]
    for v, row in d["variants"].items():
        cells = " | ".join(
            f"{row[m]['base']:.4f} | {row[m]['adapted']:.4f} | {row[m]['diff']:+.4f} ({_p(row[m]['p_value'])})" for m in LABELS
        )
        held = row.get("held_out_queries_ndcg@10")
        held_cell = f"{held['base']:.4f} / {held['adapted']:.4f}" if held else "-"
        out.append(f"| {v} | {cells} | {held_cell} |")
    return out
