"""What the lab's scripts share: the `--set NAME:INDEX_DIR:QUERIES` option and the report writer.

A report is Markdown that names, under its title, the command that regenerates it; its figures, when a
script has them as data, go to a `.json` file beside it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JudgedSet:
    """One judged dev set: its name in the report, the index it is searched in and its queries (JSONL)."""

    name: str
    index_dir: Path
    queries: Path
    spec: str  # as given on the command line (repeated in the regenerating command)


def parse_set(spec: str) -> JudgedSet:
    name, sep1, rest = spec.partition(":")
    index_dir, sep2, queries = rest.partition(":")
    if not (sep1 and sep2 and name and index_dir and queries):
        raise argparse.ArgumentTypeError(f"expected NAME:INDEX_DIR:QUERIES, got {spec!r}")
    return JudgedSet(name, Path(index_dir), Path(queries), spec)


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the first line of `doc`, with the repeated `--set` option."""
    out = argparse.ArgumentParser(description=doc.split("\n")[0])
    out.add_argument(
        "--set",
        action="append",
        required=True,
        type=parse_set,
        metavar="NAME:INDEX_DIR:QUERIES",
        help="a judged set: its name, its index folder and its queries JSONL (repeat)",
    )
    return out


def command(module: str, sets: Iterable[JudgedSet], *options: str) -> str:
    """The command line that regenerates a report: `python -m MODULE --set ... OPTIONS`."""
    return " ".join([f"python -m {module}", *(f"--set {s.spec}" for s in sets), *options])


def markdown(title: str, command: str, lines: Sequence[str]) -> str:
    """A report: its title, the command that regenerates it, then `lines`; one newline at the end."""
    return "\n".join([f"# {title}", "", f"Reproduce: `{command}`", "", *lines]).rstrip("\n") + "\n"


def write_report(path: Path, text: str, data: dict | None = None) -> None:
    """Write the Markdown `text` to `path` and, when given, `data` as JSON beside it (`path` with `.json`)."""
    path.write_text(text, encoding="utf-8")
    if data is not None:
        path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
