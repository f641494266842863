"""The Milvus engine's pure parts, without a server: filter expressions (checked against the fake-encoder
index's masks), URI redaction, settings from the environment and the manifest record."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import MilvusSettings, Settings
from rag.index.engine import Selection
from rag.index.milvus.client import redact
from rag.index.milvus.expressions import filters_expression, rows_expression, selection_expression
from rag.records.filters import Filters


def test_filters_become_one_conjunction():
    f = Filters(domain="finance", context="activist", status="stable", min_confidence=3)
    assert (
        filters_expression(f)
        == 'array_contains(domains, "finance") and array_contains(contexts, "activist") and status == "stable" and confidence >= 3.0'
    )
    assert filters_expression(Filters()) == ""
    assert filters_expression(Filters(min_confidence=0.0)) == "confidence >= 0.0"


def test_string_literals_are_quoted_and_escaped():
    assert filters_expression(Filters(domain='say "hi" \\ bye')) == 'array_contains(domains, "say \\"hi\\" \\\\ bye")'


def test_rows_expression_picks_the_shorter_list():
    assert rows_expression("pattern_row", np.array([True, False, False, False])) == "pattern_row in [0]"
    assert rows_expression("pattern_row", np.array([True, True, False, True])) == "pattern_row not in [2]"
    assert rows_expression("pattern_row", np.ones(3, dtype=bool)) == ""
    assert rows_expression("row", np.zeros(2, dtype=bool)) == "row in []"


def test_selection_uses_filters_when_active_else_the_mask(fake_retriever):
    selection = fake_retriever.selection(Filters(domain="finance"))
    assert selection_expression(selection) == 'array_contains(domains, "finance")'
    n = len(fake_retriever.index.patterns)
    keep = np.ones(n, dtype=bool)
    keep[4] = False  # more-like-this excludes the pattern itself, without filters
    assert selection_expression(Selection(Filters(), keep, keep[fake_retriever.index.chunk_pattern])) == "pattern_row not in [4]"
    assert selection_expression(Selection(Filters())) == ""


def test_expression_fields_match_the_masks(fake_retriever):
    """Every pattern the mask keeps satisfies the expression's terms, evaluated here on the stored field values."""
    from rag.index.milvus.collections import _filter_fields

    for given in (dict(domain="finance"), dict(context="tech"), dict(status="stable"), dict(min_confidence=4.0)):
        mask = fake_retriever.masks.mask(Filters(**given))
        for keep, pattern in zip(mask, fake_retriever.index.patterns):
            row = _filter_fields(pattern)
            ok = (
                (given.get("domain") is None or given["domain"] in row["domains"])
                and (given.get("context") is None or given["context"] in row["contexts"])
                and (given.get("status") is None or row["status"] == given["status"])
                and row["confidence"] >= given.get("min_confidence", -1.0)
            )
            assert bool(keep) == ok, (given, pattern.slug)


def test_credentials_never_leave_the_settings():
    assert redact("http://root:Milvus@db.example:19530") == "http://db.example:19530"
    assert redact("https://db.example") == "https://db.example"
    settings = MilvusSettings(uri="http://x:1", token="s3cret")
    assert "s3cret" not in repr(settings)


def test_settings_from_the_environment():
    env = {"RAG_MILVUS_URI": "http://m:19530", "RAG_MILVUS_TOKEN": "t", "RAG_MILVUS_TIMEOUT_S": "4", "RAG_MILVUS_PREFIX": "lib"}
    assert Settings.from_env(env).milvus == MilvusSettings(uri="http://m:19530", token="t", timeout_s=4, prefix="lib")
    assert Settings.from_env({}).milvus is None
    assert MilvusSettings.from_env({"RAG_MILVUS_TOKEN": "t"}).at("http://manifest:1").uri == "http://manifest:1"
    with pytest.raises(ValueError, match="RAG_MILVUS_TIMEOUT_S must be a whole number of seconds"):
        MilvusSettings.from_env({"RAG_MILVUS_TIMEOUT_S": "2.5"})


def test_manifest_keeps_the_milvus_record(fake_index):
    from rag.records.manifest import Manifest, MilvusRecord

    record = MilvusRecord(
        uri="http://m:19530", chunks="rag_x_chunks", patterns="rag_x_patterns", analyzer={"tokenizer": "whitespace"}, prefix="rag"
    )
    manifest = fake_index.manifest.with_(engine="milvus", milvus=record)
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert "milvus" not in fake_index.manifest.to_dict()
    with pytest.raises(KeyError):
        Manifest.from_dict({**manifest.to_dict(), "milvus": None})
