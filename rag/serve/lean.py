"""Token-lean answers for agents (the MCP tools): compact structured content plus one short text line.

An agent pays for every token it reads, so each answer keeps what an agent acts on and drops the rest:
no nulls, empty strings, empty lists or false flags (absent means none or false), floats to two decimals,
no echo of the request, no per-retriever scores. Everything else a record gains on the wire passes
through, so a new field reaches agents without a change here. The text line names the answer in a few
words (for a client that shows only text) and never repeats the structured content.

Budgets (model word pieces, over the whole tool result as the client receives it; tests/integration/test_mcp.py):
the tool list under 2,000 tokens; a search for k=5 under 700 tokens with evidence and citations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.chunking import section_key
from rag.records.pattern import Pattern
from rag.records.results import Results
from rag.search.context import ContextPack
from rag.search.evidence import window
from rag.serve.wire import FacetsResponse, RelatedResponse, SearchResponse

SEARCH_EVIDENCE = 1  # evidence passages per hit in a search answer: the best one (k=5 fits 700 tokens)
SEARCH_SNIPPET_CHARS = 160  # its snippet, re-centred on the matched words (about a sentence)
SUMMARY_CHARS = 100  # a hit without evidence shows its summary instead, cut at a word boundary
# List order is the rank, and the fused score is only comparable within one answer (the order already
# says it); the context echoes the request. Dropping the score leaves room for a calibrated number.
_HIT_DROPPED = ("rank", "score", "domains", "retrievers", "context")
_SEARCH_DROPPED = ("query", "k", "fusion", "timings_ms", "offset")
_PATTERN_KEPT = ("slug", "title", "aliases", "summary", "domains", "tension", "lifecycle", "relationships")


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


def search_answer(results: Results, terms: Sequence[str]) -> tuple[dict, str]:
    """A search as ranked hits, each with its best passage: {cite, snippet} centred on the matched words.
    (bmn, k=5: with 140-character summaries and 200-character snippets the answer was 889 tokens; without
    summaries and with 160-character snippets it is about 650.)"""
    data = SearchResponse.of(results).model_dump(mode="json")
    for key in _SEARCH_DROPPED:
        data.pop(key, None)
    hits = []
    for hit in data["hits"]:
        for key in _HIT_DROPPED:
            hit.pop(key, None)
        summary = hit.pop("summary", "")  # get_pattern has it; a hit without evidence shows it instead
        if not hit["evidence"]:
            hit["summary"] = _cut(summary, SUMMARY_CHARS)
        hit["evidence"] = [
            {"cite": ev["chunk_id"], "snippet": window(ev["snippet"], SEARCH_SNIPPET_CHARS, terms)[0]}
            for ev in hit["evidence"][:SEARCH_EVIDENCE]
        ]
        hits.append(hit)
    data["hits"] = hits
    text = f"{len(hits)} patterns, best first." if hits else "No pattern matched."
    if results.no_good_match and hits:
        text = f"No good match in this library (best relevance below {results.relevance_threshold:.2f}); {len(hits)} weak patterns."
    return compact(data), text


def pattern_answer(
    version: str, pattern: Pattern, context: str | None, label: str | None, sections: Sequence[str] | None
) -> tuple[dict, str]:
    """The pattern's essentials and the asked sections (all when `sections` is None), each cited slug#section."""
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
    return compact(data), f"{pattern.title}: {len(chosen)} of {len(keys)} sections."


def _asked(section, key: str, asked: Iterable[str]) -> bool:
    """A section is asked for by its role (solution), title (Known Uses) or cite key (known-uses)."""
    names = {section.role, section.title.lower(), key}
    return any(a.strip().lower() in names for a in asked)


def pack_answer(pack: ContextPack) -> tuple[dict, str]:
    """A context pack: the passages as {cite, text} (what the budget counted) and the counts."""
    data = {
        "index_version": pack.index_version,
        "tokens": pack.tokens,
        "skipped": pack.skipped,
        "passages": [{"cite": p.cite, "text": p.text} for p in pack.passages],
    }
    text = f"{len(pack.passages)} passages, {pack.tokens} of {pack.budget_tokens} tokens."
    return compact(data), text


def related_answer(related: RelatedResponse, similar: Sequence[Any]) -> tuple[dict, str]:
    data = related.model_dump(mode="json")
    for edge in data["related"]:
        edge.pop("kind", None)  # `relation` already reads it from the asked pattern
    if similar:
        data["similar"] = [{"slug": s.slug, "title": s.title, "score": s.score} for s in similar]
    text = f"{len(data['related'])} related and {len(similar)} similar patterns of {related.slug}."
    return compact(data), text


def facets_answer(facets: FacetsResponse) -> tuple[dict, str]:
    data = facets.model_dump(mode="json")
    for key in ("domains", "contexts", "statuses"):
        data[key] = {f["value"]: f["count"] for f in data[key]}
    return compact(
        data
    ), f"{len(data.get('domains', {}))} domains, {len(data.get('contexts', {}))} contexts, {len(data.get('statuses', {}))} statuses."


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


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."
