"""TREC files: qrels (`qid iter docno rel`) and runs (`qid Q0 docno rank score tag`), as trec_eval reads them.

Runs are written one line per hit in rank order, ranks from 1, with the retriever's own score. trec_eval
orders a query's documents by score (ties by docno, descending), not by the rank column, so where two
scores tie, or a name match is pinned above a higher-scoring hit, it may see a slightly different order
than the ranking written; `out_of_order` counts those queries so a report can say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Qrel:
    """One judgment: `grade` > 0 is relevant (the larger the better); `line` is its line in the file."""

    qid: str
    doc: str
    grade: int
    line: int = 0


@dataclass(frozen=True, slots=True)
class ScoredDoc:
    """One line of a run: a document at a 1-based rank with its score."""

    qid: str
    doc: str
    rank: int
    score: float


Run = Mapping[str, Sequence[ScoredDoc]]  # qid -> documents best-first


class TrecFormatError(ValueError):
    """A line of a TREC file that cannot be read; the message names the file and line."""

    def __init__(self, path: Path | str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


def read_qrels(path: Path) -> tuple[list[Qrel], list[TrecFormatError]]:
    """Every readable judgment and one error per unreadable line (the rest of the file is still read)."""
    qrels: list[Qrel] = []
    errors: list[TrecFormatError] = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != 4:
                errors.append(TrecFormatError(path, number, f"expected 4 fields `qid 0 docid rel`, got {len(fields)}"))
                continue
            qid, _, doc, grade = fields
            try:
                qrels.append(Qrel(qid, doc, int(grade), number))
            except ValueError:
                errors.append(TrecFormatError(path, number, f"relevance {grade!r} is not an integer"))
    return qrels, errors


def write_qrels(path: Path, qrels: Iterable[Qrel]) -> None:
    lines = [f"{q.qid} 0 {q.doc} {q.grade}\n" for q in qrels]
    _write(path, lines)


def format_run(run: Run, tag: str) -> list[str]:
    """Run lines in query order, then rank order; names must not contain whitespace."""
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag {tag!r} must be one word")
    lines: list[str] = []
    for qid, docs in run.items():
        for d in sorted(docs, key=lambda d: d.rank):
            lines.append(f"{qid} Q0 {d.doc} {d.rank} {d.score:.6f} {tag}\n")
    return lines


def write_run(path: Path, run: Run, tag: str) -> None:
    _write(path, format_run(run, tag))


def read_run(path: Path) -> tuple[dict[str, list[ScoredDoc]], str | None]:
    """A run file back as qid -> documents by rank, and its tag; raises TrecFormatError at the first bad line."""
    run: dict[str, list[ScoredDoc]] = {}
    tag: str | None = None
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise TrecFormatError(path, number, f"expected 6 fields `qid Q0 docid rank score tag`, got {len(fields)}")
            qid, _, doc, rank, score, tag = fields
            try:
                run.setdefault(qid, []).append(ScoredDoc(qid, doc, int(rank), float(score)))
            except ValueError:
                raise TrecFormatError(path, number, f"rank {rank!r} or score {score!r} is not a number") from None
    return {qid: sorted(docs, key=lambda d: d.rank) for qid, docs in run.items()}, tag


def out_of_order(run: Run) -> list[str]:
    """Queries whose scores do not strictly decrease with rank (trec_eval may reorder them)."""
    out = []
    for qid, docs in run.items():
        docs = sorted(docs, key=lambda d: d.rank)
        if any(a.score <= b.score for a, b in zip(docs, docs[1:])):
            out.append(qid)
    return out


def _write(path: Path, lines: list[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
