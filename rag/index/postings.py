"""Which documents hold each token: the one implementation of query coverage, for every engine.

Coverage is the idf-weighted share of a query's distinct tokens that a document contains (BM25's own idf,
log(1 + (n - df + 0.5) / (df + 0.5)); a token no document holds weighs as the rarest), in [0, 1]. The embedded
engine reads the postings out of its bm25s index (no copy); the Milvus engine, whose BM25 lives on the server,
keeps the same postings of the full-text corpus in the local build folder (`postings-fulltext.npz`), so both
engines compute identical coverage and the learned fusion ranks alike on both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class Postings:
    """Token -> document rows, as CSR arrays over a vocabulary (token ids index `indptr`)."""

    def __init__(self, vocab: Mapping[str, int], indptr: np.ndarray, indices: np.ndarray, size: int):
        self.vocab = vocab
        self.indptr = indptr
        self.indices = indices
        self.size = size  # documents

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

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, indptr=self.indptr, indices=self.indices, size=np.array(self.size),
                     vocab=np.frombuffer(json.dumps(sorted(self.vocab, key=self.vocab.__getitem__)).encode("utf-8"), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> Postings:
        with np.load(path) as data:
            words = json.loads(data["vocab"].tobytes().decode("utf-8"))
            return cls({w: i for i, w in enumerate(words)}, data["indptr"], data["indices"], int(data["size"]))
