"""Issue 26, builds: a damaged build is never reused or "up to date", one lock for the whole build, the shrink guard,
storage failures as one line, and a library with no loadable file (fake encoder, small libraries)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli.app import app
from rag.config import BuildSettings
from rag.embedding.fake import FakeEncoder
from rag.errors import BuildLocked, LibraryError, ShrinkRefused, StorageError
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.index.store import CHUNKS, build_lock, current_build
from support import front_matter, small_library, topic_body, write_pattern

runner = CliRunner()


@pytest.fixture()
def built(tmp_path):
    library = small_library(tmp_path / "lib")
    index_dir = tmp_path / "index"
    first = build_index(BuildSettings(library, index_dir), FakeEncoder())
    return library, index_dir, first


def _append(library: Path, name: str = "bees.md") -> None:
    path = library / name
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more sentence about hives.\n", encoding="utf-8")


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_lost_or_cut_chunk_file_is_never_reused(built, damage):
    """The high-severity defect: 904 chunks became 231 after `chunks.jsonl` went missing and one file changed."""
    library, index_dir, first = built
    chunks = current_build(index_dir) / CHUNKS
    if damage == "missing":
        chunks.unlink()
    else:
        lines = chunks.read_text(encoding="utf-8").splitlines(keepends=True)
        chunks.write_text("".join(lines[: len(lines) // 3]), encoding="utf-8")  # cut at a line boundary
    _append(library)
    summary = build_index(BuildSettings(library, index_dir), FakeEncoder())
    assert summary.repaired and CHUNKS in summary.repaired
    assert summary.chunks == first.chunks and summary.patterns_rechunked == summary.patterns  # nothing reused from the damage
    index = SearchIndex.open(index_dir)
    assert {c.slug for c in index.chunks} == {"bees", "bikes", "bread"} and len(index.chunks) == first.chunks


def test_a_corrupt_build_of_an_unchanged_library_is_rebuilt_and_says_why(built):
    library, index_dir, first = built
    chunks = current_build(index_dir) / CHUNKS
    chunks.write_text(chunks.read_text(encoding="utf-8")[:-5], encoding="utf-8")
    summary = build_index(BuildSettings(library, index_dir), FakeEncoder())
    assert not summary.up_to_date and summary.repaired and "chunks.jsonl" in summary.repaired
    assert summary.build_id != first.build_id
    assert build_index(BuildSettings(library, index_dir), FakeEncoder()).up_to_date  # repaired: up to date again


def test_the_summary_sentence_says_the_build_was_repaired():
    from rag.cli.library import summary_sentence
    from rag.index.build import BuildSummary

    summary = BuildSummary(
        "lib",
        "idx",
        build_id="b",
        patterns=3,
        files=3,
        chunks=27,
        chunks_encoded=27,
        repaired="index file chunks.jsonl is missing",
        seconds={"load": 0.1},
    )
    assert summary_sentence(summary, Path("idx")).endswith(
        "The previous build could not be trusted (index file chunks.jsonl is missing): rebuilt from scratch."
    )


def test_a_second_build_fails_at_once_naming_the_holder(built):
    library, index_dir, _ = built
    holding, release = threading.Event(), threading.Event()

    def hold():
        with build_lock(index_dir):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        encoder = FakeEncoder()
        with pytest.raises(BuildLocked, match=rf"another build is writing {index_dir} \(pid {os.getpid()}, started 20\d\d-"):
            build_index(BuildSettings(library, index_dir, rebuild=True), encoder)
        assert encoder.calls == 0  # refused before any work: nothing encoded
    finally:
        release.set()
        thread.join(10)


def test_a_build_that_would_drop_half_the_patterns_is_refused_unless_allowed(built, tmp_path):
    library, index_dir, first = built
    wrong = tmp_path / "wrong"
    write_pattern(wrong, "bees", front_matter("bees"), topic_body("keeping honey bees"))
    with pytest.raises(ShrinkRefused, match=r"refusing to drop 2 of 3 patterns \(the library has 1\).*--allow-shrink"):
        build_index(BuildSettings(wrong, index_dir), FakeEncoder())
    assert current_build(index_dir).name == first.build_id  # the served build is untouched
    allowed = build_index(BuildSettings(wrong, index_dir, allow_shrink=True), FakeEncoder())
    assert allowed.patterns == 1 and current_build(index_dir).name == allowed.build_id


def test_a_build_that_drops_a_whole_domain_is_refused(tmp_path):
    library = tmp_path / "lib"
    for n in range(3):
        write_pattern(library, f"farm-{n}", front_matter(f"farm-{n}", ontology={"domain": "farming"}), topic_body(f"farm {n}"))
    for n in range(4):
        write_pattern(library, f"code-{n}", front_matter(f"code-{n}", ontology={"domain": "software"}), topic_body(f"code {n}"))
    index_dir = tmp_path / "index"
    build_index(BuildSettings(library, index_dir), FakeEncoder())
    for n in range(3):
        (library / f"farm-{n}.md").unlink()
    with pytest.raises(ShrinkRefused, match=r"every pattern of 1 domain\(s\): farming \(3 patterns\)"):
        build_index(BuildSettings(library, index_dir), FakeEncoder())


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ENOSPC, "no space left on the device writing"),
        (errno.EROFS, "is on a read-only file system; use a writable --index-dir"),
        (errno.EACCES, "permission denied writing"),
    ],
)
def test_storage_failures_are_one_line_naming_the_path_and_the_fix(built, monkeypatch, code, message):
    library, index_dir, first = built
    _append(library)

    def failing_rename(src, dst):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr("rag.index.store.os.rename", failing_rename)
    with pytest.raises(StorageError, match=message) as exc:
        build_index(BuildSettings(library, index_dir), FakeEncoder())
    assert "\n" not in str(exc.value) and str(index_dir) in str(exc.value)
    assert current_build(index_dir).name == first.build_id  # the previous build keeps serving


def test_the_cli_says_a_storage_failure_in_one_line_and_exits_2(built, monkeypatch):
    library, index_dir, _ = built
    _append(library)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(index_dir / "builds"))

    monkeypatch.setattr("rag.index.store.os.rename", full)
    monkeypatch.setattr("rag.cli.library.encoder", lambda model=None: FakeEncoder())
    result = runner.invoke(app, ["index", str(library), "--index-dir", str(index_dir)])
    assert result.exit_code == 2
    error = result.stderr.rsplit("\r", 1)[-1].split("\n")[-2]  # the last line, after any progress bar's carriage returns
    assert error.startswith("error: no space left on the device writing") and result.stderr.count("error:") == 1
    assert "Traceback" not in result.output + result.stderr


def test_a_library_where_no_file_loads_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    library = tmp_path / "broken"
    library.mkdir()
    (library / "a.md").write_text("no front matter here\n", encoding="utf-8")
    (library / "b.md").write_text("---\n: [\n---\nbody\n", encoding="utf-8")
    with pytest.raises(LibraryError, match="none of the 2 pattern files in .* could be loaded; `rag validate .*` lists why"):
        build_index(BuildSettings(library, tmp_path / "index"), FakeEncoder())
    monkeypatch.setattr("rag.cli.library.encoder", lambda model=None: FakeEncoder())
    result = runner.invoke(app, ["index", str(library), "--index-dir", str(tmp_path / "index")])
    assert result.exit_code == 2 and result.stderr.startswith("error: none of the 2 pattern files")
    assert "Traceback" not in result.output + result.stderr


def test_validate_exits_1_on_a_duplicate_slug(tmp_path):
    write_pattern(tmp_path, "real", front_matter("real"))
    write_pattern(tmp_path, "aaa-impostor", front_matter("real", title="Impostor"))
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "duplicate slug 'real'" in result.output
