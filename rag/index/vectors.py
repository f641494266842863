"""FAISS inner-product index over normalized chunk vectors, with filter masks applied inside the search.

Kinds: `flat` (exact, default), `ivf` (IndexIVFFlat; `nlist`, `nprobe`), `hnsw` (IndexHNSWFlat; `m`,
`ef_construction`, `ef_search`). The kind and its parameters are recorded in the manifest.

A flat index is saved as a numpy file (`vectors.npy`: the n x d float32 rows after a 64-byte-aligned header), and
with the BLAS kernel opened as a read-only memory map, not read into memory: every serving process of one machine
(`rag serve --workers N`) shares the same page-cache pages, and a selective filter scores only its rows with numpy.
Not FAISS's own file: an IndexFlatIP file puts its rows at byte 45, and numpy multiplies a float32 map that is not
4-byte aligned without BLAS (commons-os, 42,880 x 384, one query: 155 ms mapped from the FAISS file, 1.5 ms aligned).
FAISS itself is loaded only for the other kinds and kernels, and for a flat build written before this layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rag.config import VectorSettings
from rag.errors import IndexCorrupt
from rag.records.manifest import REBUILD_HINT

# A filter keeping less than this share of rows is scanned by FAISS's bitmap selector, which only scores
# the kept rows; from it on one BLAS product over every row wins. eval/bench/kernels.md (83,379 x 384, k=300,
# BLAS time / FAISS time): 25% kept: one query 1.41, 8 at once 0.87, 32 at once 0.46; 35% kept: 1.00, 0.59,
# 0.33; 50% kept: 0.97, 0.51, 0.29. FAISS's cost grows with the rows kept, BLAS's does not. (Was 0.5.)
BLAS_MIN_SHARE = 0.35


class VectorIndex:
    def __init__(self, index, settings: VectorSettings, mapped: np.ndarray | None = None):
        self.index = index  # the FAISS index (None when the vectors are only memory-mapped)
        self.settings = settings
        self._mapped = mapped

    @property
    def size(self) -> int:
        return len(self._mapped) if self._mapped is not None else int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._mapped.shape[1]) if self._mapped is not None else int(self.index.d)

    @classmethod
    def build(cls, vectors: np.ndarray, settings: VectorSettings = VectorSettings()) -> VectorIndex:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        index: Any
        if settings.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif settings.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, settings.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = settings.ef_construction
        elif settings.kind == "ivf":
            nlist = settings.nlist or max(1, min(n // 39, int(4 * np.sqrt(max(n, 1)))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            if n:
                index.train(vectors)
            index.make_direct_map()
            settings = VectorSettings(**{**settings.to_dict(), "nlist": nlist})
        else:
            raise ValueError(f"unknown vector index kind {settings.kind!r}; choose flat, ivf or hnsw")
        if n:
            index.add(vectors)
        return cls(index, settings)

    @property
    def kernel(self) -> str:
        """How exact search runs: "blas" (a flat index with the blas kernel) or "faiss"."""
        return "blas" if self.settings.kind == "flat" and self.settings.kernel == "blas" else "faiss"

    def matrix(self) -> np.ndarray:
        """The stored vectors of a flat index as a read-only (n, d) float32 view (no copy)."""
        if self._mapped is not None:
            return self._mapped
        import faiss

        if self.size == 0:
            return np.zeros((0, self.dimension), np.float32)
        view = faiss.rev_swig_ptr(self.index.get_xb(), self.size * self.dimension).reshape(self.size, self.dimension)
        view.flags.writeable = False
        return view

    def search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, rows) for one query vector, restricted to rows where `mask` is True."""
        return self.search_batch(np.atleast_2d(query), k, mask)[0]

    def search_batch(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-k (scores, rows) per query row, all under the same `mask`, in one pass where the kernel allows."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        kept = self.size if mask is None else int(mask.sum())
        k = min(k, kept)
        if k <= 0:
            return [(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)) for _ in queries]
        if self.kernel == "blas" and (mask is None or kept >= BLAS_MIN_SHARE * self.size):
            return self._blas(queries, k, mask)
        return [self._faiss(query, k, mask) for query in queries]

    def _blas(self, queries: np.ndarray, k: int, mask: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        scores = queries @ self.matrix().T  # (q, n), one sgemm
        if mask is not None:
            scores[:, ~mask] = -np.inf
        out = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((top, -row[top]))]
            out.append((row[top].astype(np.float32), top.astype(np.int64)))
        return out

    def _faiss(self, query: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:  # memory-mapped flat vectors: score only the rows the filter keeps
            return self._subset(query, k, mask)
        import faiss

        params = self._params()
        if mask is not None and not mask.all():
            bits = np.packbits(mask.astype(np.uint8), bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            params._bits = bits  # keep the buffer alive for the duration of the search
        scores, rows = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def _subset(self, query: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(mask) if mask is not None else np.arange(self.size)
        scores = self.matrix()[rows] @ query.reshape(-1).astype(np.float32)
        k = min(k, len(rows))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
        top = top[np.lexsort((rows[top], -scores[top]))]
        return scores[top].astype(np.float32), rows[top].astype(np.int64)

    def _params(self):
        import faiss

        if self.settings.kind == "ivf":
            return faiss.SearchParametersIVF(nprobe=self.settings.nprobe)
        if self.settings.kind == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=self.settings.ef_search)
        return faiss.SearchParameters()

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of `rows`: a gather from the flat matrix (one numpy take), else FAISS's batch
        reconstruction (IVF needs its direct map; HNSW stores a flat copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros((0, self.dimension), np.float32)
        if self.settings.kind == "flat":
            return self.matrix()[rows]
        return np.vstack([self.index.reconstruct(int(r)) for r in rows])

    def save(self, path: Path) -> None:
        """Write the index to `path`: a numpy file for a flat index, FAISS's format otherwise (rag.index.store names both)."""
        if self.settings.kind == "flat":
            with open(path, "wb") as handle:  # a handle, so numpy keeps the name as given
                np.save(handle, np.ascontiguousarray(self.matrix()), allow_pickle=False)
            return
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, settings: VectorSettings) -> VectorIndex:
        path = Path(path)
        if path.suffix == ".npy":
            try:
                mapped = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as exc:
                raise IndexCorrupt(
                    f"index file {path.name} is not a numpy array file ({exc}); {REBUILD_HINT.format(dir=path.parent.parent.parent)}"
                ) from None
            if mapped.dtype != np.float32 or mapped.ndim != 2:
                raise IndexCorrupt(
                    f"index file {path.name} holds {mapped.dtype} {mapped.shape}, not float32 rows; "
                    f"{REBUILD_HINT.format(dir=path.parent.parent.parent)}"
                )
            if settings.kernel == "blas":
                return cls(None, settings, mapped)
            import faiss

            flat = faiss.IndexFlatIP(int(mapped.shape[1]))
            if len(mapped):
                flat.add(np.ascontiguousarray(mapped))
            return cls(flat, settings)
        import faiss

        index: Any = faiss.read_index(str(path))
        if settings.kind == "ivf":
            index.make_direct_map()
        return cls(index, settings)
