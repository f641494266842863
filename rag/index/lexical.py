"""BM25 indexes (bm25s) and the analyzer shared by documents and queries.

bm25s was chosen over rank-bm25 by measurement (issue 3: 0.04 ms vs 10.8 ms per query over 3,614 keyword
documents; 0.15 ms vs 178 ms over 33k section chunks); a test checks its ranking against rank-bm25.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.index.postings import Postings

_WORD = re.compile(r"[a-z0-9]+")
_WORD_ANY_CASE = re.compile(r"[A-Za-z0-9]+")  # _WORD before lowercasing, so offsets index the original text
# bm25s's English list plus common question words; short enough that names like "The Commons" survive.
STOPWORDS = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their then there these they this
    to was will with how what why when where who which do does did can could should would i we our us you your my me
    them its from about than so""".split()
)


def _bm25s():
    """bm25s, with its logger quietened: on import it sets itself to DEBUG ("Building index from tokens")."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.DEBUG if logging.getLogger("rag").isEnabledFor(logging.DEBUG) else logging.WARNING)
    return bm25s


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def analyze(text: str, stem: bool = True) -> list[str]:
    """Lowercase word tokens, stopwords removed, Snowball-stemmed."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return _stemmer().stemWords(words) if stem else words


def analyze_spans(text: str, prefixes: frozenset[str] | set[str] | None = None) -> list[tuple[int, int, str]]:
    """`analyze` with each token's (start, end) character offsets in `text`: the same words, stopwords and stems.

    `prefixes`: keep only words starting with one of these (lowercase), before stemming: a caller looking for
    given stems passes `stem_prefixes(stems)` and skips stemming, and even matching, words that cannot be one."""
    pattern = _WORD_ANY_CASE if prefixes is None else _words_starting(frozenset(prefixes))
    found = [(m.start(), m.end(), m.group().lower()) for m in pattern.finditer(text)]
    found = [f for f in found if f[2] not in STOPWORDS]
    stems = _stemmer().stemWords([word for _, _, word in found])
    return [(start, end, stem) for (start, end, _), stem in zip(found, stems)]


def stem_prefixes(stems: Sequence[str] | AbstractSet[str]) -> frozenset[str]:
    """What the words that stem to `stems` start with. A Snowball English stem keeps its word's first two letters:
    its suffix rules leave at least two, and the one rule that rewrites the second (a consonant + "ying" -> that
    consonant + "ie": dying, lying, tying, vying) is covered by also taking the consonant + "y". True of all 54,269
    distinct words of the corpora and patterns/ (a test checks patterns/); a snippet of a commons-os chunk then
    matches and stems about one word in twenty."""
    out: set[str] = set()
    for stem in stems:
        if stem:
            out.add(stem[:2])
            if len(stem) == 3 and stem[1:] == "ie":
                out.add(stem[0] + "y")
    return frozenset(out)


@lru_cache(maxsize=256)
def _words_starting(prefixes: frozenset[str]) -> re.Pattern[str]:
    """The words of `_WORD_ANY_CASE` (maximal runs of ASCII letters and digits) that start, in any case, with one
    of `prefixes`: the regex skips the other words instead of building and dropping a match for each."""
    if not prefixes:
        return re.compile(r"(?!)")  # matches nothing
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=lambda p: (-len(p), p)))
    return re.compile(r"(?<![A-Za-z0-9])(?:" + alternatives + r")[A-Za-z0-9]*", re.IGNORECASE | re.ASCII)


class LexicalIndex:
    """BM25 (Lucene variant) over a fixed list of documents; scores every document for a query."""

    def __init__(self, model, k1: float, b: float):
        self._model = model
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = model.vocab_dict

    @classmethod
    def build(cls, documents: Sequence[list[str]], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        bm25s = _bm25s()
        model = bm25s.BM25(method="lucene", k1=k1, b=b)
        # an empty document would be dropped by bm25s' vocabulary; give it a token that never matches
        model.index([doc if doc else ["\x00"] for doc in documents], show_progress=False)
        return cls(model, k1, b)

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document (float32, length `size`); zeros when no query token is known."""
        known = [t for t in query_tokens if t in self._vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    @property
    def postings(self) -> Postings:
        """Which documents hold each token (a view of bm25s's score matrix: a token's documents are those it scores)."""
        return Postings(self._vocab, self._model.scores["indptr"], self._model.scores["indices"], self.size)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._model.save(str(directory), show_progress=False)
        (directory / "settings.json").write_text(json.dumps({"k1": self.k1, "b": self.b, "method": "lucene"}))

    @classmethod
    def load(cls, directory: Path, mmap: bool = False) -> LexicalIndex:
        bm25s = _bm25s()
        settings = json.loads((directory / "settings.json").read_text())
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False, verbosity=0)
        return cls(model, settings["k1"], settings["b"])
