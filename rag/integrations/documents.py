"""A search hit as an agent framework's document: its text (what a model reads) and its metadata (what a program
reads: slug, title, calibrated relevance, the citation of the best matching section, ...). No framework here.
"""

from __future__ import annotations

from typing import Any

from rag.records.results import Hit, Results

# metadata a model reading a document's text is shown (the rest is for programs)
SHOWN_METADATA = ("slug", "title", "citation", "relevance")


def hit_text(hit: Hit) -> str:
    """The title, the summary, the pattern's label in the reader's context (when it has one), then each matched
    passage's snippet after its citation, `[slug#section] ...` (the summary's passage only once)."""
    label = f"{hit.context}: {hit.context_label}" if hit.context_label else ""
    passages = (f"[{e.chunk_id}] {e.snippet}" for e in hit.evidence if e.role != "summary")
    return "\n".join(line for line in (hit.title, hit.summary, label, *passages) if line)


def hit_metadata(hit: Hit, results: Results) -> dict[str, Any]:
    """Flat, JSON-ready facts of `hit` and of the search that found it. `citation` is the best matching
    section's id (`slug#section`; the slug when no section matched), `citations` every matched section's."""
    best = hit.evidence[0] if hit.evidence else None
    return {
        "slug": hit.slug,
        "title": hit.title,
        "relevance": hit.relevance,
        "rank": hit.rank,
        "score": hit.score,
        "citation": best.chunk_id if best else hit.slug,
        "section": best.section if best else None,
        "citations": [e.chunk_id for e in hit.evidence],
        "summary": hit.summary,
        "domains": list(hit.domains),
        "context": hit.context,
        "context_label": hit.context_label,
        "pinned": hit.pinned,
        "duplicates": list(hit.duplicates),
        "filters": {name: value for name, value in results.filters.items() if value is not None},
        "no_good_match": results.no_good_match,
        "index_version": results.index_version,
    }
