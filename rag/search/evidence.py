"""Evidence: the passages that explain why a pattern ranked where it did, with snippets.

A snippet is the window of the chunk that holds the most distinct query terms (then the most matches),
matched on the analyzer's stemmed tokens (`rag.index.lexical.analyze_spans`), so "ordering" finds
"ordered"; it starts at a sentence when one starts close enough before the first match, else it centres
the matches, and it is cut at word boundaries with "..." where text was left out. The offsets of the
matched words in the snippet come with it, for a face to highlight.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from rag.config import RetrieverSettings
from rag.index.lexical import analyze_spans, stem_prefixes
from rag.index.search_index import SearchIndex
from rag.records.results import Evidence
from rag.search.signals.base import SignalRun


def evidence_for(
    index: SearchIndex, rows: Sequence[int], runs: Mapping[str, SignalRun], tokens: Sequence[str], settings: RetrieverSettings
) -> list[tuple[Evidence, ...]]:
    """For each pattern row, up to `settings.evidence` passages: its best dense chunks first, then (when the
    full-text signal ran) its best BM25 passages not already shown. The passages of every row are scored in one
    engine call."""
    dense = runs.get("dense")
    shown: list[list[Evidence]] = []
    seen: list[set[int]] = []
    for row in rows:
        out: list[Evidence] = []
        mine_seen: set[int] = set()
        if dense is not None and dense.chunks is not None:
            chunk_rows, scores = dense.chunks.rows, dense.chunks.scores
            mine = np.flatnonzero(index.chunk_pattern[chunk_rows] == row)
            for i in mine[: settings.evidence]:
                mine_seen.add(int(chunk_rows[i]))
                out.append(evidence_item(index, int(chunk_rows[i]), float(scores[i]), "dense", settings.snippet_chars, tokens))
        shown.append(out)
        seen.append(mine_seen)
    wanting = [i for i, out in enumerate(shown) if len(out) < settings.evidence] if "fulltext" in runs and tokens else []
    if wanting:
        spans = [index.chunk_rows(int(rows[i])) for i in wanting]
        scores_all = index.engine.passage_scores(tokens, np.concatenate(spans))
        start = 0
        for i, chunk_rows in zip(wanting, spans):
            passage_scores = scores_all[start : start + len(chunk_rows)]
            start += len(chunk_rows)
            for j in np.argsort(-passage_scores, kind="stable"):
                if len(shown[i]) >= settings.evidence or passage_scores[j] <= 0:
                    break
                if int(chunk_rows[j]) not in seen[i]:
                    shown[i].append(
                        evidence_item(index, int(chunk_rows[j]), float(passage_scores[j]), "fulltext", settings.snippet_chars, tokens)
                    )
    return [tuple(out) for out in shown]


def evidence_item(index: SearchIndex, chunk_row: int, score: float, signal: str, snippet_chars: int, terms: Sequence[str] = ()) -> Evidence:
    chunk = index.chunks[chunk_row]
    text, highlights = window(chunk.body, snippet_chars, terms)
    return Evidence(chunk.id, chunk.section, chunk.role, text, round(score, 6), signal, highlights)


Spans = tuple[tuple[int, int], ...]
ELLIPSIS = "..."
_SENTENCE_END = ".!?:\n"


def window(text: str, limit: int, terms: Sequence[str] = ()) -> tuple[str, Spans]:
    """At most `limit` characters of `text` around its densest run of query terms (stemmed), and their offsets."""
    wanted = set(terms)
    matches = [(s, e, stem) for s, e, stem in analyze_spans(text, _prefixes(frozenset(wanted))) if stem in wanted] if wanted else []
    if len(text) <= limit:
        return text, tuple((s, e) for s, e, _ in matches)
    if not matches:
        start, end = 0, _word_end(text, 0, limit - len(ELLIPSIS), 0)
    else:
        room = limit - 2 * len(ELLIPSIS)
        first, last = _densest(matches, room)
        start = _start(text, matches[first][0], matches[last][1], room)
        end = _word_end(text, start, room, matches[last][1])
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    spans = tuple((s + shift, e + shift) for s, e, _ in matches if s >= start and e <= end)
    return prefix + text[start:end] + suffix, spans


def _densest(matches: list[tuple[int, int, str]], room: int) -> tuple[int, int]:
    """Indices of the first and last match of the run that fits in `room` characters with the most
    distinct terms, then the most matches (the earliest such run on ties)."""
    best, best_key, last = (0, 0), (0, 0), 0
    for first in range(len(matches)):
        last = max(last, first)
        while last + 1 < len(matches) and matches[last + 1][1] - matches[first][0] <= room:
            last += 1
        key = (len({stem for _, _, stem in matches[first : last + 1]}), last - first + 1)
        if key > best_key:
            best, best_key = (first, last), key
    return best


def _start(text: str, first: int, last_end: int, room: int) -> int:
    """Where the window starts: the latest sentence start that keeps the run in view, else the run centred,
    moved to a word start."""
    slack = max(0, room - (last_end - first))
    earliest = max(0, first - slack)
    for at in range(first, earliest - 1, -1):
        if at == 0 or (text[at - 1].isspace() and at >= 2 and text[at - 2] in _SENTENCE_END) or text[at - 1] == "\n":
            if not text[at].isspace():
                return at
    start = min(max(0, first - slack // 2), max(0, len(text) - room))
    while 0 < start < first and not text[start - 1].isspace():
        start += 1
    return start


def _word_end(text: str, start: int, room: int, keep: int) -> int:
    """The end of the window: at most `room` characters after `start`, not inside a word, never before `keep`."""
    end = min(len(text), start + room)
    if end < len(text) and not text[end].isspace():
        cut = text.rfind(" ", max(start, keep), end)
        end = cut if cut > start else end
    return len(text[start:end].rstrip()) + start


@functools.lru_cache(maxsize=1024)
def _prefixes(stems: frozenset[str]) -> frozenset[str]:
    """stem_prefixes of a query's stems, computed once for all the passages of its hits."""
    return stem_prefixes(stems)
