"""The registered signals, by the name fusion weights use. A new signal: one file, one line here."""

from __future__ import annotations

from rag.search.signals.base import Signal, SignalRun
from rag.search.signals.dense import DenseSignal
from rag.search.signals.lexical import FullTextSignal, KeywordsSignal
from rag.search.signals.names import NamesSignal

SIGNALS: dict[str, type[Signal]] = {
    "dense": DenseSignal,
    "keywords": KeywordsSignal,
    "fulltext": FullTextSignal,
    "names": NamesSignal,
}

__all__ = ["SIGNALS", "Signal", "SignalRun"]
