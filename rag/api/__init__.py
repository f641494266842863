"""The Python API's parts; `rag` re-exports the public names (its `__all__`), which are the only stable ones.

`local` opens an index in process (`rag.open_index`), `client` asks a running `rag serve` over HTTP
(`rag.Client`), both with the same methods, arguments and records (`library.Library`); `answers` holds the
records of the answers that have no record below, `encoder` chooses the query encoder of an index.
"""
