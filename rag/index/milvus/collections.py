"""One build's Milvus collections: schema, upload, alias, and dropping the builds an index directory pruned.

Two collections per build, because Milvus computes BM25 statistics (document count, average length) per field
over every row of a collection: a chunk collection (dense vector + the passages corpus) and a pattern
collection (the keywords and full-text corpora, every pattern in both). Each row carries its pattern's filter
fields and `pattern_row`, so one expression filters either collection.

The BM25 fields hold the project's own analyzed tokens (`rag.index.lexical.analyze`: stop words, Snowball)
joined by spaces, and Milvus splits them on whitespace only: both engines then score identical token
streams, and Milvus's BM25 is bm25s's (Lucene variant) times exactly k1 + 1 (measured: see README,
"Scaling out"). An empty document gets PLACEHOLDER, as bm25s gives it one token, so average lengths agree.

A build never changes a collection a reader may be using: it writes fresh collections, and only then does the
local `current` link move (and, where the server has aliases, `<prefix>_current_*`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence

import numpy as np

from rag.config import LexicalSettings, MilvusSettings, VectorSettings
from rag.index.milvus.client import guarded, is_unimplemented, pymilvus, redact
from rag.index.milvus.expressions import NO_CONFIDENCE
from rag.records.manifest import MilvusRecord
from rag.records.pattern import Pattern

log = logging.getLogger(__name__)

ANALYZER = {"tokenizer": "whitespace"}  # the text is already analyzed tokens
PLACEHOLDER = "_"  # never a query token (analyze() yields [a-z0-9]+ stems)
MAX_TEXT_BYTES = 65535  # Milvus's VARCHAR limit
BATCH_ROWS = 256
INDEX_TYPES = {"flat": "FLAT", "ivf": "IVF_FLAT", "hnsw": "HNSW"}  # Lite accepts FLAT and IVF_FLAT only
CHUNK_TEXT = ("passages",)
PATTERN_TEXT = ("keywords", "fulltext")


def collection_names(prefix: str) -> tuple[str, str]:
    token = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "_" + uuid.uuid4().hex[:8]
    return f"{prefix}_{token}_chunks", f"{prefix}_{token}_patterns"


def _schema(client, texts: Sequence[str], dimension: int | None):
    module = pymilvus()
    DataType, Function, FunctionType = module.DataType, module.Function, module.FunctionType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("pattern_row", DataType.INT64)
    schema.add_field("key", DataType.VARCHAR, max_length=1024)  # chunk id or slug, for operators
    if dimension is not None:
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    for name in texts:
        schema.add_field(name, DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True, analyzer_params=ANALYZER)
        schema.add_field(f"{name}_sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name=f"{name}_bm25", function_type=FunctionType.BM25, input_field_names=[name], output_field_names=[f"{name}_sparse"]))
    schema.add_field("domains", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=1024, max_length=1024)
    schema.add_field("contexts", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=1024, max_length=1024)
    schema.add_field("status", DataType.VARCHAR, max_length=256)
    schema.add_field("confidence", DataType.FLOAT)
    return schema


def _index_params(client, texts: Sequence[str], dense_index: str | None, vectors: VectorSettings, lexical: LexicalSettings):
    params = client.prepare_index_params()
    if dense_index is not None:
        extra = {"nlist": vectors.nlist or 128} if dense_index == "IVF_FLAT" else {"M": vectors.m, "efConstruction": vectors.ef_construction} if dense_index == "HNSW" else {}
        params.add_index(field_name="dense", index_type=dense_index, metric_type="COSINE", params=extra)
    for name in texts:
        params.add_index(field_name=f"{name}_sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": lexical.k1, "bm25_b": lexical.b})
    return params


class Truncation:
    def __init__(self):
        self.count = 0

    def text(self, tokens: Sequence[str]) -> str:
        """Tokens joined by spaces; PLACEHOLDER for none; cut at a token boundary to fit a VARCHAR."""
        text = " ".join(tokens) or PLACEHOLDER
        if len(text.encode("utf-8")) <= MAX_TEXT_BYTES:
            return text
        self.count += 1
        cut = text.encode("utf-8")[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
        return cut.rsplit(" ", 1)[0]


def _filter_fields(pattern: Pattern) -> dict:
    confidence = pattern.lifecycle.confidence
    return {
        "domains": sorted({d.lower() for d in pattern.domains}),
        "contexts": sorted(set(pattern.contexts)),
        "status": pattern.lifecycle.status or "",
        "confidence": NO_CONFIDENCE if confidence is None else float(confidence),
    }


def write_build(settings: MilvusSettings, client, patterns: Sequence[Pattern], chunk_keys: Sequence[str], chunk_pattern: np.ndarray,
                vectors: np.ndarray, documents: dict[str, list[list[str]]], vector_settings: VectorSettings, lexical: LexicalSettings) -> MilvusRecord:
    """Create and fill this build's two collections; drop them again if anything fails. Returns their record."""
    chunks_name, patterns_name = collection_names(settings.prefix)
    dense_index = INDEX_TYPES[vector_settings.kind]
    uri = settings.uri
    cut = Truncation()
    fields = [_filter_fields(p) for p in patterns]
    try:
        for name, texts, dim, index in ((chunks_name, CHUNK_TEXT, int(vectors.shape[1]), dense_index), (patterns_name, PATTERN_TEXT, None, None)):
            guarded(uri, name, client.create_collection, name, schema=_schema(client, texts, dim),
                    index_params=_index_params(client, texts, index, vector_settings, lexical), consistency_level="Strong", timeout=max(30, settings.timeout_s))
        chunk_rows = (
            {"row": i, "pattern_row": int(chunk_pattern[i]), "key": chunk_keys[i], "dense": vectors[i].tolist(), "passages": cut.text(documents["passages"][i]), **fields[int(chunk_pattern[i])]}
            for i in range(len(chunk_keys))
        )
        pattern_rows = (
            {"row": i, "pattern_row": i, "key": p.slug, "keywords": cut.text(documents["keywords"][i]), "fulltext": cut.text(documents["fulltext"][i]), **fields[i]}
            for i, p in enumerate(patterns)
        )
        _insert(settings, client, chunks_name, chunk_rows)
        _insert(settings, client, patterns_name, pattern_rows)
    except BaseException:
        drop(settings, client, (chunks_name, patterns_name))
        raise
    if cut.count:
        log.warning("%d BM25 documents were longer than %d bytes and were cut (their tail is not searchable on Milvus)", cut.count, MAX_TEXT_BYTES)
    return MilvusRecord(uri=redact(uri), chunks=chunks_name, patterns=patterns_name, analyzer=dict(ANALYZER), index_type=dense_index, prefix=settings.prefix, truncated=cut.count)


def _insert(settings: MilvusSettings, client, name: str, rows: Iterable[dict]) -> None:
    batch: list[dict] = []
    timeout = max(30, settings.timeout_s)
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            guarded(settings.uri, name, client.insert, name, batch, timeout=timeout)
            batch = []
    if batch:
        guarded(settings.uri, name, client.insert, name, batch, timeout=timeout)


def move_alias(settings: MilvusSettings, client, record: MilvusRecord) -> MilvusRecord:
    """Point `<prefix>_current_chunks` / `_patterns` at this build where the server has aliases (Standalone,
    Distributed); Milvus Lite answers UNIMPLEMENTED, and the local `current` link stays the only cut-over."""
    aliases = {"chunks": f"{settings.prefix}_current_chunks", "patterns": f"{settings.prefix}_current_patterns"}
    timeout = settings.timeout_s
    for part, alias in aliases.items():
        target = getattr(record, part)
        try:
            try:
                client.alter_alias(target, alias, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - the alias does not exist yet (or aliases are unimplemented)
                if is_unimplemented(exc):
                    raise
                client.create_alias(target, alias, timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            if is_unimplemented(exc):
                log.info("Milvus at %s has no collection aliases (Milvus Lite); readers follow the local current link", redact(settings.uri))
                return record
            log.warning("could not move alias %s to %s: %s", alias, target, str(exc).splitlines()[0][:200])
            return record
    from dataclasses import replace

    return replace(record, alias=aliases)


def drop(settings: MilvusSettings, client, names: Iterable[str]) -> None:
    for name in names:
        try:
            client.drop_collection(name, timeout=max(10, settings.timeout_s))
        except Exception as exc:  # noqa: BLE001 - best effort: an undropped collection only costs space
            log.warning("could not drop Milvus collection %s: %s", name, str(exc).splitlines()[0][:200])
