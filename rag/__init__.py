"""Hybrid retrieval over pattern libraries: the Python API.

    import rag
    index = rag.open_index("index")                  # or rag.Client("http://127.0.0.1:8000")
    for hit in index.search("our shelves are full of stock nobody ordered", k=3).hits:
        print(hit.slug, hit.relevance, hit.evidence[0].chunk_id)

`__all__` lists the public names (docs/python.md); everything else may change. The names are imported on first
use, so `import rag` loads neither the model nor torch, FAISS or FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> the module defining it (imported on first use)
_EXPORTS = {
    "open_index": "rag.api.local",
    "Index": "rag.api.local",
    "Client": "rag.api.client",
    "Library": "rag.api.library",
    "Filters": "rag.records.filters",
    "Results": "rag.records.results",
    "Hit": "rag.records.results",
    "Evidence": "rag.records.results",
    "Pattern": "rag.records.pattern",
    "PatternAnswer": "rag.api.answers",
    "RelatedAnswer": "rag.api.answers",
    "SimilarAnswer": "rag.api.answers",
    "RelatedPattern": "rag.search.graph",
    "SimilarPattern": "rag.search.graph",
    "Facets": "rag.search.filters",
    "PatternPage": "rag.search.browse",
    "PatternBrief": "rag.search.browse",
    "ContextPack": "rag.search.context",
    "Passage": "rag.search.context",
    "RagError": "rag.errors",
    "InputError": "rag.errors",
    "QueryError": "rag.errors",
    "UnknownFilterValue": "rag.errors",
    "PatternNotFound": "rag.errors",
    "IndexError_": "rag.errors",
    "ServerUnreachable": "rag.api.client",
    "ServerError": "rag.api.client",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
