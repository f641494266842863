"""Integration tests: the real model, real FAISS, real HTTP, a real browser and Milvus. Tests that load the model are
marked `model` and those that read ../shared/corpora `corpora` (by the fixtures they use), so `-m "not model"` and
`-m "not corpora"` select the rest."""

from __future__ import annotations

import pytest

MODEL_FIXTURES = {"embedder", "patterns_index_dir", "search_index", "retriever", "bmn_index_dir"}
CORPORA_FIXTURES = {"bmn_index_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)
        if names & CORPORA_FIXTURES:
            item.add_marker(pytest.mark.corpora)
