"""Which documents hold each token: the one implementation of query coverage, for every engine.

Coverage is the idf-weighted share of a query's distinct tokens that a document contains (BM25's own idf,
log(1 + (n - df + 0.5) / (df + 0.5)); a token no document holds weighs as the rarest), in [0, 1]. The embedded
engine reads the postings out of its bm25s index (no copy); the Milvus engine, whose BM25 lives on the server,
keeps the same postings of the full-text corpus in the local build folder (`postings-fulltext.npz`), so both
engines compute identical coverage and the learned fusion ranks alike on both.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np


class Postings:
    """Token -> document rows, as CSR arrays over a vocabulary (token ids index `indptr`)."""

    def __init__(self, vocab: Mapping[str, int], indptr: np.ndarray, indices: np.ndarray, size: int):
        self.vocab = vocab
        self.indptr = indptr
        self.indices = indices
        self.size = size  # documents
        self._transposed: tuple[np.ndarray, np.ndarray] | None = None  # document -> token ids (feedback_terms)
        self._word_list: list[str] | None = None  # token id -> token

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> Postings:
        """From analyzed documents (each a token list)."""
        vocab: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        for row, tokens in enumerate(documents):
            for token in set(tokens):
                pairs.append((vocab.setdefault(token, len(vocab)), row))
        pairs.sort()
        tokens_of = np.fromiter((t for t, _ in pairs), dtype=np.int64, count=len(pairs))
        indices = np.fromiter((r for _, r in pairs), dtype=np.int32, count=len(pairs))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.add.at(indptr, tokens_of + 1, 1)
        return cls(vocab, np.cumsum(indptr), indices, len(documents))

    def documents_with(self, token: str) -> np.ndarray:
        t = self.vocab.get(token)
        return self.indices[self.indptr[t] : self.indptr[t + 1]] if t is not None else self.indices[:0]

    def coverage(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Per document: the idf-weighted share of the query's distinct tokens it contains (float32)."""
        tokens = list(dict.fromkeys(query_tokens))
        out = np.zeros(self.size, dtype=np.float32)
        if not tokens:
            return out
        n = self.size
        total = 0.0
        for token in tokens:
            docs = self.documents_with(token)
            idf = float(np.log(1.0 + (n - len(docs) + 0.5) / (len(docs) + 0.5)))
            total += idf
            if len(docs):  # each addition in float64, rounded to float32 (the order and rounding the features were fitted with)
                out[docs] = (out[docs].astype(np.float64) + idf).astype(np.float32)
        return out / total if total > 0 else out

    def document_frequencies(self, tokens: Sequence[str]) -> np.ndarray:
        """How many documents hold each token (int64, in the order given; 0 for an unknown token)."""
        ids = [self.vocab.get(t) for t in tokens]
        return np.array([self.indptr[t + 1] - self.indptr[t] if t is not None else 0 for t in ids], dtype=np.int64)

    def feedback_terms(self, rows: np.ndarray, m: int, exclude: Collection[str] = ()) -> list[str]:
        """The `m` tokens most typical of documents `rows` (pseudo-relevance feedback, as RM3 expands a query): each
        token weighed by the share of those documents holding it times its idf, among tokens at least two of them hold
        (one document's words are its own, not the topic's), best first; `exclude` (the query's own tokens) left out."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows) < 2 or m <= 0:
            return []
        doc_indptr, doc_tokens = self._by_document()
        held = np.concatenate([doc_tokens[doc_indptr[r] : doc_indptr[r + 1]] for r in rows])
        counts = np.bincount(held, minlength=len(self.indptr) - 1)  # (a vocabulary may name a token no document holds)
        df = np.diff(self.indptr).astype(np.float64)
        idf = np.log(1.0 + (self.size - df + 0.5) / (df + 0.5))
        weight = np.where(counts >= 2, counts / len(rows) * idf, 0.0)
        words = self._words()
        skip = {self.vocab[t] for t in exclude if t in self.vocab}
        out: list[str] = []
        for t in np.argsort(-weight, kind="stable"):
            if weight[t] <= 0 or len(out) == m:
                break
            if int(t) not in skip:
                out.append(words[int(t)])
        return out

    def _by_document(self) -> tuple[np.ndarray, np.ndarray]:
        """Document -> token ids (CSR), the transpose of the postings, built on first use."""
        if self._transposed is None:
            token_of = np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))
            order = np.argsort(self.indices, kind="stable")
            doc_indptr = np.zeros(self.size + 1, dtype=np.int64)
            np.add.at(doc_indptr, self.indices.astype(np.int64) + 1, 1)
            self._transposed = (np.cumsum(doc_indptr), token_of[order])
        return self._transposed

    def _words(self) -> list[str]:
        if self._word_list is None:
            words = [""] * max(len(self.vocab), len(self.indptr) - 1)
            for word, t in self.vocab.items():
                words[t] = word
            self._word_list = words
        return self._word_list

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, indptr=self.indptr, indices=self.indices, size=np.array(self.size),
                     vocab=np.frombuffer(json.dumps(sorted(self.vocab, key=self.vocab.__getitem__)).encode("utf-8"), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> Postings:
        with np.load(path) as data:
            words = json.loads(data["vocab"].tobytes().decode("utf-8"))
            return cls({w: i for i, w in enumerate(words)}, data["indptr"], data["indices"], int(data["size"]))
