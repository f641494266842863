"""A LlamaIndex retriever over a pattern library (`pip install 'pattern-rag[llamaindex]'`).

    from rag.integrations.llamaindex import PatternRetriever
    retriever = PatternRetriever(rag.open_index("index"), k=4, reader="government")
    nodes = retriever.retrieve("our shelves are full of stock nobody ordered")

Each hit becomes a `NodeWithScore` whose score is the hit's calibrated relevance (0-1, comparable across queries)
and whose `TextNode` (id: the slug) holds the text and metadata of rag.integrations.documents; a model reading the
node is shown the slug, title, citation and relevance of its metadata, an embedding none of it.
"""

from __future__ import annotations

import asyncio

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.api.library import FiltersLike, Library, as_filters
from rag.integrations.documents import SHOWN_METADATA, hit_metadata, hit_text


class PatternRetriever(BaseRetriever):
    """The patterns that fit a query, from `library`: an opened index (`rag.open_index`) or a `rag.Client`.
    `filters` (a rag.Filters or a mapping of domain, context, status, min_confidence), `reader` (rank and label for
    a context without filtering) and `group_duplicates` go with every search."""

    def __init__(
        self,
        library: Library,
        k: int = 4,
        *,
        filters: FiltersLike = None,
        reader: str | None = None,
        group_duplicates: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ):
        self.library = library
        self.k = k
        self.filters = as_filters(filters)
        self.reader = reader
        self.group_duplicates = group_duplicates
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        results = self.library.search(
            query_bundle.query_str, self.k, filters=self.filters, reader=self.reader, group_duplicates=self.group_duplicates
        )
        nodes = []
        for hit in results.hits:
            metadata = hit_metadata(hit, results)
            node = TextNode(
                id_=hit.slug,
                text=hit_text(hit),
                metadata=metadata,
                excluded_llm_metadata_keys=[key for key in metadata if key not in SHOWN_METADATA],
                excluded_embed_metadata_keys=list(metadata),
            )
            nodes.append(NodeWithScore(node=node, score=hit.relevance))
        return nodes

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """The same search in a worker thread (a search encodes the query: CPU work)."""
        return await asyncio.to_thread(self._retrieve, query_bundle)
