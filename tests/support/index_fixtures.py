"""Session fixtures with the real parts: the real model, a real index of the project's own patterns/.

Loaded from tests/conftest.py via `pytest_plugins`. Built once per test session into a temporary folder
(encoding the ~400 chunks of patterns/ takes about 10-20 s on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import CORPORA, PATTERNS


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding.minilm import MiniLMEncoder

    return MiniLMEncoder()


@pytest.fixture(scope="session")
def embedding_cache_dir(tmp_path_factory) -> Path:
    """One embedding cache for the whole session, so every index built by tests reuses vectors."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="session")
def patterns_index_dir(tmp_path_factory, embedder, embedding_cache_dir) -> Path:
    """A built index of the project's patterns/ (read-only for tests: copy it before changing it)."""
    from rag.config import BuildSettings
    from rag.index.build import build_index

    index_dir = tmp_path_factory.mktemp("patterns-index")
    build_index(BuildSettings(PATTERNS, index_dir, cache_dir=embedding_cache_dir), embedder)
    return index_dir


@pytest.fixture(scope="session")
def search_index(patterns_index_dir):
    from rag.index.search_index import SearchIndex

    return SearchIndex.open(patterns_index_dir)


@pytest.fixture(scope="session")
def retriever(search_index, embedder):
    from rag.search.retriever import Retriever

    return Retriever(search_index, embedder)


# -- the fake encoder: unit tests of ranking, the service and the faces without the model ------------------
@pytest.fixture(scope="session")
def fake_encoder():
    from rag.embedding.fake import FakeEncoder

    return FakeEncoder()


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory, fake_encoder) -> Path:
    """patterns/ indexed with the fake encoder (read-only for tests)."""
    from rag.config import BuildSettings
    from rag.index.build import build_index

    index_dir = tmp_path_factory.mktemp("fake-patterns-index")
    build_index(BuildSettings(PATTERNS, index_dir), fake_encoder)
    return index_dir


@pytest.fixture(scope="session")
def fake_index(fake_index_dir):
    from rag.index.search_index import SearchIndex

    return SearchIndex.open(fake_index_dir)


@pytest.fixture(scope="session")
def fake_retriever(fake_index, fake_encoder):
    from rag.search.retriever import Retriever

    return Retriever(fake_index, fake_encoder)


@pytest.fixture(scope="session")
def bmn_index_dir(tmp_path_factory, embedder, embedding_cache_dir) -> Path:
    """The bmn corpus (60 patterns, ~1,000 chunks) indexed with the real model; skips when the corpora are absent."""
    from rag.config import BuildSettings
    from rag.index.build import build_index

    if not (CORPORA / "bmn").is_dir():
        pytest.skip("needs ../shared/corpora/bmn")
    index_dir = tmp_path_factory.mktemp("bmn-index")
    build_index(BuildSettings(CORPORA / "bmn", index_dir, cache_dir=embedding_cache_dir), embedder)
    return index_dir
