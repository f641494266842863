"""The Milvus engine: the same engine seam over Milvus Standalone, Distributed or Milvus Lite 2.5.1 (pymilvus).

`expressions` turns a `Selection` into a Milvus filter expression (pure, no pymilvus); `client` connects
and maps every Milvus failure to a typed error; `collections` writes one build's two collections and moves
the alias; `engine` searches them. Install with the `milvus` extra: `pip install -e '.[milvus]'`.
"""
