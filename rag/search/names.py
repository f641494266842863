"""Known-item search: match a query against pattern titles and aliases, exactly or fuzzily.

People who know a name ("Open Book Management", "open book mgmt", "razor and blades") expect that
pattern first, as the sites' Fuse.js search gives them. Names and queries are normalized (case,
punctuation, '&' -> 'and'); fuzzy similarity is the Dice coefficient of character trigrams, computed for
all names at once with a sparse matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from rag.records.pattern import Pattern, name_key

# A name of n words inside a query of m words scores CONTAINED_BASE + CONTAINED_SPAN * n / m: below
# CONTAINED_BASE + CONTAINED_SPAN (n < m), so always under the 0.8 pin, and it is never pinned anyway
# (`NameMatch.pinnable`). eval/ablation.md "- names" (bmn -0.030) measures the names signal as a whole.
CONTAINED_BASE = 0.6
CONTAINED_SPAN = 0.15
MAX_NAME_CHARS = 120  # a "name" longer than this is a sentence: no name matching
# Typo tolerance: every word of the query equals the name's word or, for words of TYPO_MIN_LETTERS or
# more, is one edit away (insertion, deletion, substitution or transposition of neighbours: "freemuim" ->
# "freemium"). A name matched with one edit scores TYPO_ONE_EDIT, with one edit in each of two words
# TYPO_TWO_EDITS: both above the 0.8 pin, so a one-letter slip in a known name still puts it first. It is
# tried only when no name equals the query exactly, and never across a different number of words.
TYPO_MIN_LETTERS = 4
TYPO_ONE_EDIT = 0.9
TYPO_TWO_EDITS = 0.85
TYPO_MAX_WORDS = 6
TYPO_MAX_COMBINATIONS = 64


def trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


@dataclass(frozen=True, slots=True)
class NameMatch:
    row: int  # pattern row
    name: str  # the title or alias that matched, as written
    similarity: float  # 1.0 exact (normalized), else trigram Dice
    kind: str = "exact"  # exact | typo (one slip per word) | fuzzy (trigram-similar) | contained (inside a longer query)

    @property
    def pinnable(self) -> bool:
        """Only a match of the whole query may be pinned first; a name inside a longer query is evidence."""
        return self.kind != "contained"


class NameIndex:
    def __init__(self, patterns: Sequence[Pattern], aliases: bool = True):
        self.names: list[str] = []
        self.rows: list[int] = []
        self.exact: dict[str, list[int]] = {}
        for row, pattern in enumerate(patterns):
            for name in dict.fromkeys((pattern.title, *(pattern.aliases if aliases else ()), pattern.slug.replace("-", " "))):
                key = name_key(name)
                if not key:
                    continue
                self.names.append(name)
                self.rows.append(row)
                self.exact.setdefault(key, []).append(len(self.names) - 1)
        vocab: dict[str, int] = {}
        indptr: list[int] = [0]
        indices: list[int] = []
        for name in self.names:
            grams = trigrams(name_key(name))
            indices.extend(vocab.setdefault(g, len(vocab)) for g in grams)
            indptr.append(len(indices))
        self.vocab = vocab
        self.matrix = sparse.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(self.names), max(len(vocab), 1))
        )
        self.sizes = np.diff(indptr).astype(np.float32)
        self.row_array = np.asarray(self.rows, dtype=np.int64)
        self.by_words: dict[tuple[str, ...], list[int]] = {}
        self.deletions: dict[str, set[str]] = {}  # a word with one letter deleted -> the name words it comes from
        for key, indexes in self.exact.items():
            words = tuple(key.split())
            if len(words) <= TYPO_MAX_WORDS:
                self.by_words.setdefault(words, []).extend(indexes)
                for word in words:
                    if len(word) >= TYPO_MIN_LETTERS:
                        for variant in (word, *_deletions(word)):
                            self.deletions.setdefault(variant, set()).add(word)

    def match(self, query: str, min_similarity: float = 0.6, mask: np.ndarray | None = None, limit: int = 20) -> list[NameMatch]:
        """Patterns whose title/alias matches the query, best first, one entry per pattern.

        Similarity 1.0: the whole query is the name (normalized); trigram Dice for near matches (typos,
        spelling variants); 0.6-0.75 when a name of two or more words appears inside a longer query.
        """
        key = name_key(query)
        if not key or len(key) > MAX_NAME_CHARS:
            return []
        found: dict[int, NameMatch] = {}
        for i in self.exact.get(key, ()):
            row = self.rows[i]
            if mask is None or mask[row]:
                found.setdefault(row, NameMatch(row, self.names[i], 1.0))
        grams = [self.vocab[g] for g in trigrams(key) if g in self.vocab]
        if grams and len(key) >= 4:
            query_vec = np.zeros(self.matrix.shape[1], dtype=np.float32)
            query_vec[grams] = 1.0
            shared = self.matrix @ query_vec
            dice = 2.0 * shared / (self.sizes + len(trigrams(key)))
            candidates = np.nonzero(dice >= min_similarity)[0]
            for i in candidates[np.argsort(-dice[candidates], kind="stable")]:
                row = self.rows[i]
                if row not in found and (mask is None or mask[row]):
                    found[row] = NameMatch(row, self.names[i], float(dice[i]), "fuzzy")
        if not self.exact.get(key):
            for i, similarity in self._typos(key):
                row = self.rows[i]
                if (mask is None or mask[row]) and similarity > found.get(row, NameMatch(row, "", 0.0)).similarity:
                    found[row] = NameMatch(row, self.names[i], similarity, "typo")
        words = key.split()
        if 2 < len(words) <= 30:  # a known name of 2+ words said inside a longer query: a weaker signal, never pinned
            for n in range(min(len(words) - 1, 8), 1, -1):
                for start in range(len(words) - n + 1):
                    for i in self.exact.get(" ".join(words[start : start + n]), ()):
                        row = self.rows[i]
                        if row not in found and (mask is None or mask[row]):
                            found[row] = NameMatch(
                                row, self.names[i], round(CONTAINED_BASE + CONTAINED_SPAN * n / len(words), 6), "contained"
                            )
        return sorted(found.values(), key=lambda m: -m.similarity)[:limit]

    def _typos(self, key: str) -> list[tuple[int, float]]:
        """(name index, similarity) of names that the query spells with one slip per word, at most two slips."""
        words = key.split()
        if not 1 <= len(words) <= TYPO_MAX_WORDS:
            return []
        options: list[list[tuple[str, int]]] = []
        for word in words:
            near = [(word, 0)]
            if len(word) >= TYPO_MIN_LETTERS:
                candidates = set(self.deletions.get(word, ()))
                for variant in _deletions(word):
                    candidates |= self.deletions.get(variant, set())
                near += [(c, 1) for c in sorted(candidates) if c != word and _one_edit(word, c)]
            options.append(near)
        out: list[tuple[int, float]] = []
        combos: list[tuple[tuple[str, ...], int]] = [((), 0)]
        for near in options:
            combos = [(done + (w,), edits + e) for done, edits in combos for w, e in near if edits + e <= 2][:TYPO_MAX_COMBINATIONS]
        for words_, edits in combos:
            if edits == 0:
                continue
            for i in self.by_words.get(words_, ()):
                out.append((i, TYPO_ONE_EDIT if edits == 1 else TYPO_TWO_EDITS))
        return out


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance of exactly one (a != b)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))
