"""A LangChain retriever over a pattern library (`pip install 'pattern-rag[langchain]'`).

    from rag.integrations.langchain import PatternRetriever
    retriever = PatternRetriever(library=rag.open_index("index"), k=4, reader="government")
    docs = retriever.invoke("our shelves are full of stock nobody ordered")

Each hit becomes a `Document` (id: the slug; text and metadata: rag.integrations.documents), best first. `k`,
`filters`, `reader` and `group_duplicates` may also be given to `invoke` for one call.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, field_validator

from rag.api.library import Library, as_filters
from rag.integrations.documents import hit_metadata, hit_text
from rag.records.filters import Filters


class PatternRetriever(BaseRetriever):
    """The patterns that fit a query, from `library`: an opened index (`rag.open_index`) or a `rag.Client`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    library: Library
    k: int = Field(4, description="Patterns per query.")
    filters: Filters = Field(default_factory=Filters, description="A rag.Filters, or a mapping of domain, context, status, min_confidence.")
    reader: str | None = Field(None, description="Rank and label for this context (corporate, government, ...) without filtering.")
    group_duplicates: bool = Field(False, description="Fold near-duplicate patterns under the best one.")

    @field_validator("filters", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Filters:
        return as_filters(value)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: Any = None,
        reader: str | None = None,
        group_duplicates: bool | None = None,
    ) -> list[Document]:
        results = self.library.search(
            query,
            self.k if k is None else k,
            filters=self.filters if filters is None else as_filters(filters),
            reader=self.reader if reader is None else reader,
            group_duplicates=self.group_duplicates if group_duplicates is None else group_duplicates,
        )
        return [Document(id=hit.slug, page_content=hit_text(hit), metadata=hit_metadata(hit, results)) for hit in results.hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """The same search in a worker thread (a search encodes the query: CPU work)."""
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), **kwargs)
