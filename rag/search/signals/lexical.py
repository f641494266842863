"""Lexical signals: BM25 over the author's search hints (keywords) and over each pattern's whole text."""

from __future__ import annotations

from typing import ClassVar

from rag.config import RetrieverSettings
from rag.index.engine import PatternField, top_k
from rag.index.search_index import SearchIndex
from rag.search.query import PreparedQuery
from rag.search.signals.base import SignalRun


class _BM25Signal:
    name: ClassVar[str]
    field: ClassVar[PatternField]
    needs_vector: ClassVar[bool] = False

    def __init__(self, index: SearchIndex, settings: RetrieverSettings):
        self.index = index
        self.settings = settings

    def rank(self, query: PreparedQuery) -> SignalRun:
        return SignalRun.of(top_k(query.bm25(self.field), self.settings.depth))  # the array the learned features read too


class KeywordsSignal(_BM25Signal):
    """BM25 over title, aliases, vector keywords and primary tension (one document per pattern)."""

    name = "keywords"
    field = "keywords"


class FullTextSignal(_BM25Signal):
    """BM25 over the whole pattern as one document (beat the best chunk in development, bmn 0.831 vs 0.806 alone:
    git show 63b11a2:eval/tuning.md)."""

    name = "fulltext"
    field = "fulltext"
