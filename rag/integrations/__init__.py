"""Retrievers for the agent frameworks, over an opened index (`rag.open_index`) or a `rag.Client`: `langchain`
(`pip install 'pattern-rag[langchain]'`) and `llamaindex` (`'pattern-rag[llamaindex]'`). Each maps a hit to the
framework's document the same way (`documents`)."""
