"""Unit tests run on the fake encoder and small libraries written by the tests (or the project's own 25-pattern
patterns/): never the real model, never ../shared/corpora. A test that needs either belongs in tests/integration."""

from __future__ import annotations

import pytest

REAL_PARTS = {"embedder", "patterns_index_dir", "search_index", "retriever", "bmn_index_dir", "embedding_cache_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/unit/" not in str(item.fspath).replace("\\", "/"):
            continue
        used = REAL_PARTS & set(getattr(item, "fixturenames", ()))
        marked = {m.name for m in item.iter_markers()} & {"model", "corpora"}
        if used or marked:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(used | marked)}: move it to tests/integration")
