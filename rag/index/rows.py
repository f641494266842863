"""Index rows read from disk on demand: what ranking needs stays resident, the texts stay in their files.

A build's `chunks.jsonl` and `patterns.jsonl` are read once when the index opens. From each line only what
ranking and filtering use is kept as Python objects (a chunk's slug row, role, context label and part; a
pattern's metadata); the line's byte offset is kept in a numpy array, and the texts (chunk text and section,
pattern sections) are read back with `os.pread` when a hit, a snippet or a page needs them. Serving commons-os
this keeps 0.18 GB of section and chunk text out of memory (eval/bench: serving RSS). `os.pread` has no
shared file position, so readers on many threads need no lock; an open file keeps a pruned build readable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

from rag.records.chunk import Chunk
from rag.records.pattern import Section

T = TypeVar("T")


class JsonRows:
    """Row i of a JSON-lines file, parsed from disk each time it is asked for."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open(self.path, "rb")  # closed with this object; keeps the file readable after a prune
        self._offsets = np.zeros(1, dtype=np.int64)  # one more than the rows: the end of the last line

    def scan(self, keep: Callable[[int, dict[str, Any]], T]) -> list[T]:
        """Parse every line once, in order, and return `keep(row_number, row)` for each: the caller keeps what
        must stay resident. One line is alive at a time, so the texts never all sit in memory together
        (a list of parsed rows would leave the heap fragmented at its peak)."""
        offsets: list[int] = [0]
        kept: list[Any] = []
        at = 0
        with open(self.path, "rb") as handle:
            for line in handle:
                at += len(line)
                if line.strip():
                    kept.append(keep(len(kept), json.loads(line)))
                    offsets.append(at)
                else:  # a blank line: fold it into the previous row's span
                    offsets[-1] = at
        self._offsets = np.asarray(offsets, dtype=np.int64)
        return kept

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def row(self, i: int) -> dict[str, Any]:
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        return json.loads(os.pread(self._file.fileno(), end - start, start))

    def close(self) -> None:
        self._file.close()


class ChunkTable(Sequence[Chunk]):
    """The chunks of a build, in row order. Resident: each chunk's role, context label and part (the ranking
    signals' per-chunk weights and masks are built from them); a whole Chunk (id, section, text) is read on demand."""

    def __init__(self, rows: JsonRows, roles: tuple[str, ...], contexts: tuple[str | None, ...], parts: np.ndarray):
        self._rows = rows
        self.roles = roles
        self.contexts = contexts
        self.parts = parts

    @classmethod
    def scan(cls, path: Path) -> tuple[ChunkTable, list[str]]:
        """Open a chunks file; returns the table and each chunk's pattern slug (to map chunks to pattern rows)."""
        rows = JsonRows(path)
        intern: dict[str, str] = {}

        def keep(_: int, row: dict[str, Any]) -> tuple[str, str, str | None, int]:
            chunk = Chunk(**row)  # fail at open, not at the first hit, on a row that is not a chunk
            return intern.setdefault(chunk.slug, chunk.slug), intern.setdefault(chunk.role, chunk.role), chunk.context, chunk.part

        kept = rows.scan(keep)
        table = cls(rows, tuple(k[1] for k in kept), tuple(k[2] for k in kept), np.fromiter((k[3] for k in kept), dtype=np.int32, count=len(kept)))
        return table, [k[0] for k in kept]

    def __len__(self) -> int:
        return len(self.roles)

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"chunk row {i} out of range ({len(self)} chunks)")
        return Chunk(**self._rows.row(i))

    def __iter__(self) -> Iterator[Chunk]:
        """Every chunk in row order, streamed from the file (one pass, nothing kept)."""
        with open(self._rows.path, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield Chunk(**json.loads(line))


class SectionsOnDisk(Sequence[Section]):
    """A pattern's body sections, read from the build's patterns file whenever they are used (hits that show a
    page or a derived brief, context packs, `get_pattern`). Behaves as the tuple of Sections it stands for."""

    __slots__ = ("_rows", "_row")

    def __init__(self, rows: JsonRows, row: int):
        self._rows = rows
        self._row = row

    def _load(self) -> tuple[Section, ...]:
        return tuple(Section(**s) for s in self._rows.row(self._row).get("sections", ()))

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, i):
        return self._load()[i]

    def __iter__(self) -> Iterator[Section]:
        return iter(self._load())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SectionsOnDisk):
            if other._rows is self._rows and other._row == self._row:
                return True
            return self._load() == other._load()
        return isinstance(other, tuple) and self._load() == other

    def __hash__(self) -> int:
        return hash(self._load())  # equal to the hash of the tuple it stands for

    def __deepcopy__(self, memo) -> tuple[Section, ...]:  # dataclasses.asdict copies what is not a dataclass
        return self._load()

    def __repr__(self) -> str:
        return f"SectionsOnDisk({self._rows.path.name}, row {self._row})"
