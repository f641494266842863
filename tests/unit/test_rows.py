"""Lean serving memory (issue 14, item 3): an opened index keeps only what ranking needs resident; chunk texts and
pattern sections are read from the build's files on demand, and read back exactly what was built."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rag.chunking import chunk_library
from rag.config import ChunkerSettings
from rag.index.rows import ChunkTable, JsonRows, SectionsOnDisk
from rag.index.search_index import CHUNKS, SearchIndex
from rag.load.library import load_library

PATTERNS = Path(__file__).resolve().parents[2] / "patterns"


@pytest.fixture(scope="module")
def library():
    return load_library(PATTERNS).patterns


def test_chunks_read_on_demand_are_the_chunks_built(fake_index):
    built = [c for c in chunk_library(load_library(PATTERNS).patterns) if ChunkerSettings().encodes(c)]
    table = fake_index.chunks
    assert isinstance(table, ChunkTable) and len(table) == len(built)
    assert [table[i] for i in range(len(table))] == built
    assert list(table) == built  # streamed iteration agrees with random access
    assert table[-1] == built[-1] and table[2:5] == built[2:5]
    assert table.roles == tuple(c.role for c in built)
    assert table.contexts == tuple(c.context for c in built)
    assert table.parts.tolist() == [c.part for c in built]
    with pytest.raises(IndexError):
        table[len(table)]


def test_pattern_sections_are_read_from_disk_and_equal_the_library(fake_index, library):
    by_slug = {p.slug: p for p in library}
    for pattern in fake_index.patterns:
        assert isinstance(pattern.sections, SectionsOnDisk)
        original = by_slug[pattern.slug]
        assert tuple(pattern.sections) == original.sections
        assert pattern.sections == original.sections and hash(pattern.sections) == hash(original.sections)
        assert pattern == original  # the record as a whole compares equal to the loaded one
        assert pattern.brief == original.brief
        assert pattern.section("solution") == original.section("solution")
        assert pattern.to_dict() == original.to_dict()


def test_rows_are_read_safely_from_many_threads(fake_index):
    table = fake_index.chunks
    expected = [table[i].text for i in range(len(table))]
    failures: list[str] = []

    def read(offset: int) -> None:
        for i in range(offset, offset + 3 * len(table), 7):
            if table[i % len(table)].text != expected[i % len(table)]:
                failures.append(f"row {i % len(table)}")

    threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_json_rows_offsets_skip_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": "\xc3\xa9t\xc3\xa9"}\n{"a": 3}\n')
    rows = JsonRows(path)
    kept = rows.scan(lambda i, row: (i, row["a"]))
    assert kept == [(0, 1), (1, "\u00e9t\u00e9"), (2, 3)]
    assert len(rows) == 3 and [rows.row(i)["a"] for i in range(3)] == [1, "\u00e9t\u00e9", 3]


def test_a_build_folder_pruned_while_open_stays_readable(fake_index_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(fake_index_dir, copy, symlinks=True)
    index = SearchIndex.open(copy)
    first = index.chunks[0]
    shutil.rmtree(index.build_dir)  # what a later build's prune does to an old build
    assert index.chunks[0] == first and len(tuple(index.patterns[0].sections)) > 0


def test_a_chunk_row_that_is_not_a_chunk_fails_at_open(fake_index_dir, tmp_path):
    import shutil

    from rag.errors import IndexCorrupt
    from rag.index.store import current_build, file_sha256, read_manifest, write_manifest
    from rag.records.manifest import FileRecord

    copy = tmp_path / "copy"
    shutil.copytree(fake_index_dir, copy, symlinks=True)
    build = current_build(copy)
    path = build / CHUNKS
    path.write_text(path.read_text(encoding="utf-8") + '{"id": "x", "unexpected": 1}\n', encoding="utf-8")
    manifest = read_manifest(build)  # re-sign the file so that the row check, not the checksum, must catch it
    files = dict(manifest.files)
    files[CHUNKS] = FileRecord(path.stat().st_size, file_sha256(path))
    write_manifest(build, manifest.with_(files=files))
    with pytest.raises(IndexCorrupt, match="cannot be read"):
        SearchIndex.open(copy)
