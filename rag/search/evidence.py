"""Evidence: the passages that explain why a pattern ranked where it did, with snippets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.config import RetrieverSettings
from rag.index.search_index import SearchIndex
from rag.records.results import Evidence
from rag.search.signals.base import SignalRun


def evidence_for(index: SearchIndex, row: int, runs: Mapping[str, SignalRun], tokens: Sequence[str], settings: RetrieverSettings) -> tuple[Evidence, ...]:
    """Up to `settings.evidence` passages of pattern `row`: its best dense chunks first, then (when the
    full-text signal ran) its best BM25 passages not already shown."""
    out: list[Evidence] = []
    seen: set[int] = set()
    dense = runs.get("dense")
    if dense is not None and dense.chunks is not None:
        rows, scores = dense.chunks.rows, dense.chunks.scores
        mine = np.flatnonzero(index.chunk_pattern[rows] == row)
        for i in mine[: settings.evidence]:
            seen.add(int(rows[i]))
            out.append(evidence_item(index, int(rows[i]), float(scores[i]), "dense", settings.snippet_chars))
    if "fulltext" in runs and tokens and len(out) < settings.evidence:
        chunk_rows = index.chunk_rows(row)
        passage_scores = index.engine.passage_scores(tokens, chunk_rows)
        for i in np.argsort(-passage_scores, kind="stable"):
            if len(out) >= settings.evidence or passage_scores[i] <= 0:
                break
            if int(chunk_rows[i]) not in seen:
                out.append(evidence_item(index, int(chunk_rows[i]), float(passage_scores[i]), "fulltext", settings.snippet_chars))
    return tuple(out)


def evidence_item(index: SearchIndex, chunk_row: int, score: float, signal: str, snippet_chars: int) -> Evidence:
    chunk = index.chunks[chunk_row]
    return Evidence(chunk.id, chunk.section, chunk.role, snippet(chunk.text, snippet_chars), round(score, 6), signal)


def snippet(chunk_text: str, limit: int) -> str:
    """The chunk's body (its first line is the pattern and section header), cut at a word boundary."""
    body = chunk_text.split("\n", 1)[-1]
    return body if len(body) <= limit else body[: limit - 3].rsplit(" ", 1)[0] + "..."
