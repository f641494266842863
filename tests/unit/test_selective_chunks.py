"""What gets encoded (ChunkerSettings.skip_roles / max_windows): skipped chunks are neither encoded nor
searched, their words still count in full-text BM25, and the manifest records the choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.config import BuildSettings, ChunkerSettings
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.records.filters import Filters
from rag.search.retriever import Retriever

PATTERNS = Path(__file__).resolve().parents[2] / "patterns"


@pytest.fixture(scope="module")
def selective_dir(tmp_path_factory, fake_encoder):
    index_dir = tmp_path_factory.mktemp("selective")
    chunker = ChunkerSettings(skip_roles=("vitality",), max_windows=1)
    summary = build_index(BuildSettings(PATTERNS, index_dir, chunker=chunker), fake_encoder)
    return index_dir, summary


def _every_chunk():
    from rag.chunking import chunk_library
    from rag.load.library import load_library

    return chunk_library(load_library(PATTERNS).patterns)


def test_skipped_chunks_are_not_encoded_or_searched(selective_dir):
    index_dir, summary = selective_dir
    index = SearchIndex.open(index_dir)
    assert all(c.role != "vitality" and c.part == 1 for c in index.chunks)
    full = _every_chunk()
    expected = [c for c in full if c.role != "vitality" and c.part == 1]
    assert len(index.chunks) == len(expected) < len(full)
    assert summary.chunks_skipped == len(full) - len(expected)
    assert summary.chunks_encoded == len(expected)
    assert index.manifest.chunker.skip_roles == ("vitality",) and index.manifest.chunker.max_windows == 1


def test_words_of_skipped_chunks_still_count_in_full_text(selective_dir, fake_index, fake_encoder):
    index_dir, _ = selective_dir
    index = SearchIndex.open(index_dir)
    vitality = next(c for c in _every_chunk() if c.role == "vitality")
    pattern_row = fake_index.slug_row[vitality.slug]
    from rag.index.lexical import analyze

    words = analyze(vitality.text.split("\n", 1)[-1])
    full_old = fake_index.engine.lexical("fulltext", words, 3, Retriever(fake_index, fake_encoder).selection(Filters()))
    full_new = index.engine.lexical("fulltext", words, 3, Retriever(index, fake_encoder).selection(Filters()))
    assert pattern_row in full_old.rows.tolist()
    assert full_new.rows.tolist() == full_old.rows.tolist()


def test_an_unchanged_selective_build_is_up_to_date(selective_dir, fake_encoder):
    index_dir, _ = selective_dir
    chunker = ChunkerSettings(skip_roles=("vitality",), max_windows=1)
    again = build_index(BuildSettings(PATTERNS, index_dir, chunker=chunker), fake_encoder)
    assert again.up_to_date
    changed = build_index(BuildSettings(PATTERNS, index_dir, chunker=ChunkerSettings(max_windows=0)), fake_encoder)
    assert not changed.up_to_date and changed.chunks_skipped == 0


def test_old_manifests_read_as_encoding_everything():
    old = {"max_tokens": 256, "special_tokens": 2, "version": 2}
    settings = ChunkerSettings.from_dict(old)
    assert settings == ChunkerSettings(max_windows=0) and not settings.selective


def test_the_default_encodes_the_first_window_of_each_section():
    assert ChunkerSettings().max_windows == 1 and ChunkerSettings().selective


def test_a_selective_build_rechunks_only_the_changed_file(tmp_path, fake_encoder):
    import shutil

    library = tmp_path / "library"
    shutil.copytree(PATTERNS, library)
    index_dir = tmp_path / "index"
    chunker = ChunkerSettings(skip_roles=("vitality",), max_windows=1)
    first = build_index(BuildSettings(library, index_dir, chunker=chunker), fake_encoder)
    assert first.chunks_skipped > 0 and first.patterns_rechunked == first.patterns
    victim = sorted(library.glob("*.md"))[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\nOne more closing sentence.\n", encoding="utf-8")
    second = build_index(BuildSettings(library, index_dir, chunker=chunker), fake_encoder)
    assert second.patterns_rechunked == 1
    assert second.chunks_skipped == first.chunks_skipped
    fresh = build_index(BuildSettings(library, tmp_path / "fresh", chunker=chunker), fake_encoder)
    incremental, rebuilt = SearchIndex.open(index_dir), SearchIndex.open(tmp_path / "fresh")
    assert [c.id for c in incremental.chunks] == [c.id for c in rebuilt.chunks]
    words = ["vitality", "renewal", "closing", "sentence"]
    sel = Retriever(rebuilt, fake_encoder).selection(Filters())
    a = incremental.engine.lexical("fulltext", words, 10, sel)
    b = rebuilt.engine.lexical("fulltext", words, 10, sel)
    assert a.rows.tolist() == b.rows.tolist() and a.scores.tolist() == pytest.approx(b.scores.tolist())
    assert fresh.chunks == second.chunks


def test_the_cli_rejects_an_unknown_role(tmp_path, monkeypatch):
    from rag.cli.app import app

    result = CliRunner().invoke(app, ["index", str(PATTERNS), "--index-dir", str(tmp_path / "i"), "--skip-role", "nonsense"])
    assert result.exit_code == 2
    assert "unknown role nonsense" in result.output and "vitality" in result.output
