"""Token-lean answers for agents (the MCP tools): the answer as compact text, and as compact structured content.

Many hosts pass only a tool's text to the model, and the MCP specification asks a tool that returns structured
content to return it as text too; so each answer is written twice, once for each reader:
- text, for a model: a header line, then one line per item (a search: rank, slug, title, relevance, a one-line
  summary and the best snippet with its `slug#section` citation; a pack: each passage under its citation);
- structured content, for programs: what an agent acts on and nothing else: no nulls, empty strings, empty lists
  or false flags (absent means none or false), floats to two decimals, no echo of the request, no per-retriever
  scores. Everything else a record gains on the wire passes through, so a new field reaches programs unchanged.

Budgets (model word pieces; tests/integration/test_mcp.py measures them on bmn with the SDK's client): the tool
list at most 1,500 tokens; a search for k=5 at most 700 tokens of text and 700 of structured content; a context
pack of 800 tokens at most 900 in each form, with its Solution passage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.chunking import section_key
from rag.records.pattern import Pattern
from rag.records.results import Results
from rag.search.context import ContextPack
from rag.search.evidence import window
from rag.serve.wire import FacetsResponse, RelatedResponse, SearchResponse

# A hit of a search answer: its one-line summary and its best evidence passage, as `cite` and `snippet` beside
# the slug (bmn, k=5, 56 dev queries, structured content: with the passage as evidence [{cite, snippet}], a
# 100-character summary and a 160-character snippet, at most 734 tokens; flat, 90 and 150: at most 677).
SEARCH_SNIPPET_CHARS = 150  # the best passage's snippet, re-centred on the matched words (about a sentence)
SUMMARY_CHARS = 90  # the summary's first sentence, cut at a word boundary
# List order is the rank, and the fused score is only comparable within one answer (the order already
# says it); the context echoes the request. Dropping the score leaves room for a calibrated number.
_HIT_DROPPED = ("rank", "score", "domains", "retrievers", "context")
_SEARCH_DROPPED = ("query", "k", "fusion", "timings_ms", "offset", "relevance_threshold")  # the text states the threshold
_PATTERN_KEPT = ("slug", "title", "aliases", "summary", "domains", "tension", "lifecycle", "relationships")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def compact(value: Any) -> Any:
    """`value` without None, "", [], {} or False anywhere; tuples as lists; floats to two decimals."""
    if isinstance(value, Mapping):
        out = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        return [v for v in (compact(v) for v in value) if not _empty(v)]
    if isinstance(value, float):
        return round(value, 2)
    return value


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str | list | dict) and not value)


def one_line(text: str, limit: int | None = None) -> str:
    """The first sentence of `text` on one line, cut at a word boundary to at most `limit` (SUMMARY_CHARS) characters."""
    flat = " ".join(text.split())
    return _cut(_SENTENCE_END.split(flat, 1)[0], limit or SUMMARY_CHARS)


# -- search_patterns ------------------------------------------------------------------------------
def search_answer(results: Results, terms: Sequence[str]) -> tuple[dict, str]:
    """A search as ranked hits, each with a one-line summary and its best passage (`cite`, and its `snippet` centred
    on the matched words). Text: a header line, then one line per hit."""
    data = SearchResponse.of(results).model_dump(mode="json")
    for key in _SEARCH_DROPPED:
        data.pop(key, None)
    hits = []
    for hit in data["hits"]:
        for key in _HIT_DROPPED:
            hit.pop(key, None)
        best = _best_evidence(hit.pop("evidence"))
        # a hit whose best passage is its summary shows that passage alone
        hit["summary"] = "" if best and best["role"] == "summary" else one_line(hit.get("summary", ""))
        if best:
            hit["cite"], hit["snippet"] = best["chunk_id"], window(best["snippet"], SEARCH_SNIPPET_CHARS, terms)[0]
        hits.append(hit)
    data["hits"] = hits
    lines = [_search_header(results, len(hits))]
    for rank, hit in enumerate(hits, start=results.offset + 1):
        lines.append(_hit_line(rank, hit))
    return compact(data), "\n".join(lines)


def _best_evidence(evidence: list[dict]) -> dict | None:
    """The best passage that adds to the summary: the summary's own chunk repeats it, and the tension chunk also
    holds the pattern's search keywords (a hint for retrieval, not something to read); either is shown only when
    nothing else matched."""
    return next((ev for ev in evidence if ev["role"] not in ("summary", "tension")), evidence[0] if evidence else None)


def _search_header(results: Results, n: int) -> str:
    more = f" Next page: offset={results.next_offset}." if results.next_offset is not None else ""
    if not n:
        return "No pattern matched." + more
    shown = f"{n} patterns" if not results.offset else f"Patterns {results.offset + 1}-{results.offset + n}"
    if results.no_good_match:
        return f"No good match in this library (best relevance below {results.relevance_threshold:.2f}); {shown}, the closest first.{more}"
    return f"{shown}, best first; relevance 0-1 (under {results.relevance_threshold:.2f}: no good match).{more}"


def _hit_line(rank: int, hit: dict) -> str:
    """rank. slug "title" relevance[, pinned]: summary | snippet [cite] (also: duplicates)"""
    flags = ", pinned" if hit.get("pinned") else ""
    about = [hit["summary"]] if hit.get("summary") else []
    if hit.get("context_label"):
        about.append(f"in this context: {one_line(hit['context_label'])}")
    if hit.get("cite"):
        about.append(f"{' '.join(hit['snippet'].split())} [{hit['cite']}]")
    line = f'{rank}. {hit["slug"]} "{hit["title"]}" {hit.get("relevance", 0.0):.2f}{flags}: {" | ".join(about)}'
    if hit.get("duplicates"):
        line += f" (also: {', '.join(hit['duplicates'])})"
    return line


# -- get_pattern ----------------------------------------------------------------------------------
def pattern_answer(
    version: str, pattern: Pattern, context: str | None, label: str | None, sections: Sequence[str] | None
) -> tuple[dict, str]:
    """The pattern's essentials and the asked sections (all when `sections` is None), each cited slug#section.
    Text: the essentials on a few lines, then each section under its citation."""
    data: dict[str, Any] = {"index_version": version, **{k: v for k, v in pattern.to_dict().items() if k in _PATTERN_KEPT}}
    grouped: dict[str, list[str]] = {}
    for r in data.get("relationships", []):
        grouped.setdefault(r["kind"], []).append(r["target"])
    data["relationships"] = grouped  # {kind: [target slugs]}
    if context:
        data["context"], data["context_label"] = context, label
    else:  # the labels themselves on request (context=...), as they are long
        data["contexts"] = [name for name, _ in pattern.context_labels]
    keys = [section_key(s.title, s.role) for s in pattern.sections]
    if sections is not None:  # what else may be asked
        data["section_keys"] = keys
    chosen = [(key, s) for key, s in zip(keys, pattern.sections) if sections is None or _asked(s, key, sections)]
    data["sections"] = [{"cite": f"{pattern.slug}#{key}", "title": s.title, "text": s.text} for key, s in chosen]
    data = compact(data)
    return data, _pattern_text(data, len(keys))


def _pattern_text(data: dict, total: int) -> str:
    lines = [f'{data["slug"]} "{data["title"]}"' + (f" (also: {', '.join(data['aliases'])})" if data.get("aliases") else "")]
    if data.get("summary"):
        lines.append(f"Summary: {' '.join(data['summary'].split())}")
    facts = []
    if data.get("domains"):
        facts.append(f"domains: {', '.join(data['domains'])}")
    lifecycle = data.get("lifecycle", {})
    facts += [f"{k}: {lifecycle[k]}" for k in ("status", "confidence") if k in lifecycle]
    if facts:
        lines.append("; ".join(facts))
    if data.get("tension"):
        lines.append(f"Tension: {' '.join(data['tension'].split())}")
    if data.get("relationships"):
        lines.append("Related: " + "; ".join(f"{kind} {', '.join(targets)}" for kind, targets in data["relationships"].items()))
    if data.get("context_label"):
        lines.append(f"In {data['context']} terms: {data['context_label']}")
    elif data.get("contexts"):
        lines.append(f"Labels for contexts (ask with context=): {', '.join(data['contexts'])}")
    shown = data.get("sections", [])
    keys = data.get("section_keys")
    lines.append(f"{len(shown)} of {total} sections" + (f"; keys: {', '.join(keys)}" if keys else "") + ".")
    for s in shown:
        lines += ["", f"## {s['title']} [{s['cite']}]", s["text"].strip()]
    return "\n".join(lines)


def _asked(section, key: str, asked: Iterable[str]) -> bool:
    """A section is asked for by its role (solution), title (Known Uses) or cite key (known-uses)."""
    names = {section.role, section.title.lower(), key}
    return any(a.strip().lower() in names for a in asked)


# -- context_pack ---------------------------------------------------------------------------------
def pack_answer(pack: ContextPack) -> tuple[dict, str]:
    """A context pack: the passages as {cite, text} (what the budget counted), the counts and the relevance floor.
    Text: one line of counts, then each passage under its citation."""
    data = {
        "index_version": pack.index_version,
        "tokens": pack.tokens,
        "relevance_floor": pack.relevance_floor,  # the text names how many hits were under it (HTTP: their slugs)
        "skipped": pack.skipped,
        "passages": [{"cite": p.cite, "text": p.text} for p in pack.passages],
    }
    lines = [_pack_header(pack)]
    for p in pack.passages:
        lines += ["", f"[{p.cite}]", p.text.strip()]
    return compact(data), "\n".join(lines)


def _pack_header(pack: ContextPack) -> str:
    floor = f"only patterns with relevance at least {pack.relevance_floor:.2f}"
    below = f" ({len(pack.below_floor)} below it left out)" if pack.below_floor else ""
    if not pack.passages:
        return f"No passages: {floor}, and no pattern reached it{below}."
    counts = f"{_plural(len(pack.passages), 'passage')} from {_plural(len(pack.patterns), 'pattern')}"
    return f"{counts}, {pack.tokens} of {pack.budget_tokens} tokens; {floor}{below}."


# -- related_patterns and list_facets -------------------------------------------------------------
def related_answer(related: RelatedResponse, similar: Sequence[Any]) -> tuple[dict, str]:
    """Curated edges (one per relation) and the nearest by content. Text: one line per related pattern with all
    its relations (each read from the asked pattern's side), then the similar ones on one line."""
    data = related.model_dump(mode="json")
    for edge in data["related"]:
        edge.pop("kind", None)  # `relation` already reads it from the asked pattern
    if similar:
        data["similar"] = [{"slug": s.slug, "title": s.title, "score": s.score} for s in similar]
    data = compact(data)
    targets: dict[str, tuple[str, list[str]]] = {}
    for edge in data.get("related", []):
        relations = targets.setdefault(edge["slug"], (edge["title"], []))[1]
        if edge["relation"] not in relations:
            relations.append(edge["relation"])
    lines = [f"{related.slug}: {_plural(len(targets), 'related pattern')}, {len(similar)} similar by content."]
    lines += [f'- {slug} "{title}": {", ".join(hows)}' for slug, (title, hows) in targets.items()]
    if data.get("dangling"):
        lines.append(f"Named but not in this library: {', '.join(data['dangling'])}")
    if similar:
        lines.append("Similar: " + "; ".join(f'{s.slug} "{s.title}" {s.score:.2f}' for s in similar))
    return data, "\n".join(lines)


def facets_answer(facets: FacetsResponse) -> tuple[dict, str]:
    """Valid filter values with pattern counts. Text: one line per facet."""
    data = facets.model_dump(mode="json")
    for key in ("domains", "contexts", "statuses"):
        data[key] = {f["value"]: f["count"] for f in data[key]}
    data = compact(data)
    lines = ["Filter values, each with its number of patterns:"]
    lines += [
        f"{key}: " + (", ".join(f"{v} {n}" for v, n in data.get(key, {}).items()) or "none") for key in ("domains", "contexts", "statuses")
    ]
    return data, "\n".join(lines)


# -- the tool list --------------------------------------------------------------------------------
def tool_schema(schema: dict) -> dict:
    """A tool's input schema without titles, and optional (nullable, default null) arguments as plain types."""
    out: dict = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key == "properties":
            value = {name: _argument(prop) for name, prop in value.items()}
        out[key] = value
    return out


def _argument(prop: dict) -> dict:
    prop = {k: v for k, v in prop.items() if k != "title"}
    options = prop.get("anyOf")
    if options and prop.get("default", 0) is None:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            prop = {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **kept[0]}
    return prop


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
